// Runs templates/wix/dcomc-apply.js under Node with stand-ins for the two Windows Installer /
// Windows Script Host objects it uses (Session, WScript.Shell), and prints what the action
// did as JSON: the command line it started, what it wrote to standard input, its result.
// Usage: node run_apply_js.js SCRIPT CUSTOMACTIONDATA EXITCODE
const fs = require("fs");
const vm = require("vm");
const [script, data, exitCode] = process.argv.slice(2);
const record = { command: null, stdin: "", closed: false };
const sandbox = {
    Session: { Property: (name) => (name === "CustomActionData" ? data : "") },
    ActiveXObject: function (progid) {
        if (progid !== "WScript.Shell") throw new Error("unexpected ActiveXObject " + progid);
        this.Exec = (command) => {
            record.command = command;
            return {
                Status: 1,
                ExitCode: Number(exitCode),
                StdIn: { Write: (text) => { record.stdin += text; }, Close: () => { record.closed = true; } },
                StdOut: { ReadAll: () => "" },
                StdErr: { ReadAll: () => "" },
            };
        };
    },
};
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(script, "utf8"), sandbox);
record.result = vm.runInContext("Apply()", sandbox);
process.stdout.write(JSON.stringify(record));
