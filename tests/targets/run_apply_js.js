// Runs a function of templates/wix/dcomc-apply.js under Node with stand-ins for the objects it
// uses (Session, WScript.Shell), and prints what the action did as JSON: the properties it set,
// the command line it started, what it wrote to standard input, which pipes it touched, the
// messages it sent, its result.
// Usage: node run_apply_js.js SCRIPT FUNCTION PROPERTIES_JSON EXITCODE
// DCOMC_TEST_EXEC (JSON) shapes the started process: `readThrows` (reading its output fails),
// `runningPolls` (its Status says "running" that many times before it says "done"), `runThrows`
// (WScript.Shell.Run finds no program).
//
// JScript sets a parameterized COM property by assigning to the call (`Session.Property("X") =
// v`), which JavaScript cannot run: those statements are rewritten into calls of the stand-ins
// (`Session.__put_Property("X", v)`) before the script runs; nothing else is changed.
const fs = require("fs");
const vm = require("vm");
const [script, func, propertiesJson, exitCode] = process.argv.slice(2);
const properties = JSON.parse(propertiesJson);
const record = {
    set: {}, command: null, stdin: "", closed: false, stdoutReads: 0, stderrTouched: false,
    statusPolls: 0, messages: [], puts: 0, regReads: [], runs: [],
};
const execShape = JSON.parse(process.env.DCOMC_TEST_EXEC || "{}");
const sandbox = {
    Session: {
        Property: (name) => (name in properties ? properties[name] : ""),
        __put_Property: (name, value) => { record.set[name] = value; },
        Installer: {
            CreateRecord: () => ({ fields: {}, __put_StringData(i, v) { this.fields[i] = v; } }),
        },
        Message: (kind, rec) => { record.messages.push([kind, rec.fields[0]]); return 1; },
    },
    ActiveXObject: function (progid) {
        if (progid !== "WScript.Shell") throw new Error("unexpected ActiveXObject " + progid);
        // The registry as DCOMC_TEST_REGISTRY gives it (JSON: full value name -> value); an
        // absent value throws, as WScript.Shell.RegRead does.
        this.RegRead = (name) => {
            record.regReads.push(name);
            const registry = JSON.parse(process.env.DCOMC_TEST_REGISTRY || "{}");
            if (!(name in registry)) throw new Error("unable to open " + name);
            return registry[name];
        };
        this.Run = (command, style, wait) => {
            record.runs.push([command, style, wait]);
            if (execShape.runThrows) throw new Error("the system cannot find the file specified");
            return 0;
        };
        this.Exec = (command) => {
            record.command = command;
            const exec = {
                get Status() {
                    record.statusPolls += 1;
                    return record.statusPolls <= (execShape.runningPolls || 0) ? 0 : 1;
                },
                ExitCode: Number(exitCode),
                StdIn: { Write: (text) => { record.stdin += text; }, Close: () => { record.closed = true; } },
                StdOut: {
                    ReadAll: () => {
                        record.stdoutReads += 1;
                        if (execShape.readThrows) throw new Error("the pipe cannot be read");
                        return "";
                    },
                },
            };
            Object.defineProperty(exec, "StdErr", {
                get() { record.stderrTouched = true; return { ReadAll: () => "" }; },
            });
            return exec;
        };
    },
};
const source = fs.readFileSync(script, "utf8").replace(
    /\b([A-Za-z_][\w.]*)\.(Property|StringData)\(([^()]*)\) = ([^;]+);/g,
    (_, target, name, args, value) => {
        record.puts += 1;
        return `${target}.__put_${name}(${args}, ${value});`;
    });
vm.createContext(sandbox);
vm.runInContext(source, sandbox);
record.result = vm.runInContext(func + "()", sandbox);
process.stdout.write(JSON.stringify(record));
