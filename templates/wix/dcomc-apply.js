// dcomc-apply.js - the custom actions of a dcomc MSI (JScript: ES3, as the Windows Script Host
// runs it; every action is a 64-bit script). Prepare and Apply run the engine of a host that
// needs passwords; CheckReboot runs in every MSI.
//
// Prepare (immediate, before the installation script runs) reads the properties and sets the
// property DcomcApply, the CustomActionData of Apply (hidden from the MSI log by
// MsiHiddenProperties): TAB-separated fields, each Base64 of the UTF-16LE code units of
//     cmd.exe, powershell.exe, the entry script, the data file, the backup name, reg.exe,
//     the site's registry key (HKLM\SOFTWARE\dcomc\<site>), the engine's extra switch
//     (DcomcForce: "" or "-Force", set by the site package when DCOMC_HOST names the host),
//     then account and password pairs (DCOMC_ACCOUNT_n, DCOMC_PASSWORD_n)
// so a TAB or newline in a password is data, not a separator, and no code page changes it.
//
// Apply (deferred, LocalSystem, after the payload is installed) starts the engine through
// cmd.exe, whose `2>&1` merges its standard error into standard output: one pipe to drain, so
// the engine can never block on a full pipe that nobody reads. The passwords go to the
// engine's STANDARD INPUT, never onto its command line, one line per account:
//     account TAB Base64(UTF-16LE bytes of the password) LF
// (the Base64 from CustomActionData, passed on unchanged: the password is never decoded here).
// The paths reach cmd.exe's command line inside double quotes, where & | < > ^ ( ) are plain
// characters; `"` (no Windows path holds one) and `%` (cmd expands %NAME% when NAME is an
// environment variable, even inside quotes) are refused with a message, before anything is
// changed: the install folder comes from the site name (letters, digits, . _ -) unless an
// administrator overrides DCOMC_INSTALLDIR.
//
// Reboots: the engine exits 5 when it applied a setting Windows reads only at startup. A
// deferred action cannot ask Windows Installer for a reboot (MsiSetMode is not among the
// functions a deferred action may call: "Obtaining Context Information for Deferred Execution
// Custom Actions"), and cannot set a property either. So cmd.exe records the engine's verdict
// in the registry, value RebootRequired (DWORD 1 after exit 5, 0 after exit 0) of the site's
// key, in the same command line as the engine (REBOOT_TAIL: the EXE action of a host without
// passwords runs the same tail, wix.py), and CheckReboot, an immediate action after
// InstallFinalize, reads it and sets DCOMC_REBOOT_REQUIRED, on which the standard ScheduleReboot
// action is conditioned: the MSI then returns 3010 (ERROR_SUCCESS_REBOOT_REQUIRED). The MSI's
// REBOOT property defaults to ReallySuppress, so the reboot is scheduled, never forced, unless
// the installer's caller asks (REBOOT=Force, or REBOOT="" for Windows Installer's own prompt).
//
// Prepare and Apply return 1 (success) or 3 (failure, which makes Windows Installer stop or
// roll back the installation); Apply returns 1 only when cmd.exe's exit code is 0: the engine
// ended with 0 or 5 and its verdict was recorded.

var ENTRY = "Invoke-DcomConfig.ps1";
var FLAGS = " -NoProfile -NonInteractive -ExecutionPolicy Bypass";
var ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
var FIXED = 8; // cmd.exe, powershell.exe, entry script, data file, backup name, reg.exe, key,
               // switch
var PATHS = 7; // the fixed fields that go between quotes on cmd.exe's command line

// Base64 of the UTF-16LE bytes of `text` (JScript has no btoa): two bytes per code unit, low
// byte first; surrogate pairs stay two code units, as UTF-16LE stores them.
function toBase64(text) {
    var bytes = [];
    var out = [];
    var i;
    for (i = 0; i < text.length; i++) {
        var unit = text.charCodeAt(i);
        bytes.push(unit & 0xFF, (unit >> 8) & 0xFF);
    }
    for (i = 0; i < bytes.length; i += 3) {
        var rest = bytes.length - i;
        var n = (bytes[i] << 16) | ((rest > 1 ? bytes[i + 1] : 0) << 8) | (rest > 2 ? bytes[i + 2] : 0);
        out.push(ALPHABET.charAt((n >> 18) & 63), ALPHABET.charAt((n >> 12) & 63),
                 rest > 1 ? ALPHABET.charAt((n >> 6) & 63) : "=",
                 rest > 2 ? ALPHABET.charAt(n & 63) : "=");
    }
    return out.join("");
}

// Inverse of toBase64; null for anything that is not Base64 of whole UTF-16LE code units.
function fromBase64(text) {
    if (!isBase64(text)) {
        return null;
    }
    var bytes = [];
    var i;
    for (i = 0; i < text.length; i += 4) {
        var n = 0;
        var pad = 0;
        for (var j = 0; j < 4; j++) {
            var c = text.charAt(i + j);
            n = n << 6;
            if (c == "=") {
                pad++;
            } else {
                n = n | ALPHABET.indexOf(c);
            }
        }
        bytes.push((n >> 16) & 0xFF);
        if (pad < 2) {
            bytes.push((n >> 8) & 0xFF);
        }
        if (pad < 1) {
            bytes.push(n & 0xFF);
        }
    }
    if (bytes.length % 2 != 0) {
        return null;
    }
    var units = [];
    for (i = 0; i < bytes.length; i += 2) {
        units.push(String.fromCharCode(bytes[i] | (bytes[i + 1] << 8)));
    }
    return units.join("");
}

function isBase64(text) {
    return text.length % 4 == 0 && /^[A-Za-z0-9+\/]*={0,2}$/.test(text);
}

// A path or name that can go between double quotes on cmd.exe's command line unchanged.
function cmdSafe(text) {
    return text != "" && !/["%\x00-\x1f]/.test(text);
}

// The engine's extra switch: nothing, or -Force (a host named by DCOMC_HOST, not by the PC).
function switchSafe(text) {
    return text == "" || text == "-Force";
}

// An account name that can be a field of a standard-input line.
function lineSafe(text) {
    return text != "" && !/[\x00-\x1f]/.test(text);
}

// An error message: in the MSI log, and in a dialog when the installation has a user interface.
function report(text) {
    try {
        var record = Session.Installer.CreateRecord(0);
        record.StringData(0) = "dcomc: " + text;
        Session.Message(0x01000000, record); // msiMessageTypeError
    } catch (e) {
        // no way to report: the return value still fails the installation
    }
}

// What cmd.exe runs after the engine (the same text as wix.REBOOT_TAIL): its exit code is 0
// only for the engine's 0 (RebootRequired = 0) and 5 (RebootRequired = 1), each recorded;
// every other code, a negative one (a crash) included, is 3. Explicit `exit` everywhere: no
// branch depends on what cmd.exe leaves as its exit code when an `if` is false.
function rebootTail(reg, key) {
    var write = '"' + reg + '" add "' + key + '" /v RebootRequired /t REG_DWORD /f /reg:64 /d ';
    return ' & if not errorlevel 0 (exit 3) else if errorlevel 6 (exit 3) else if errorlevel 5 (' +
        write + '1 >nul 2>&1 && exit 0 || exit 3) else if errorlevel 1 (exit 3) else (' +
        write + '0 >nul 2>&1 && exit 0 || exit 3)';
}

// Immediate, after InstallFinalize: what the last Apply recorded (see the top). Reading fails
// only if Apply did not record, which it does before succeeding: then a reboot is asked for
// anyway (a needless reboot costs less than DCOM settings silently not in effect), logged.
function CheckReboot() {
    var needed = true;
    try {
        needed = new ActiveXObject("WScript.Shell").RegRead(
            "HKLM\\" + Session.Property("DcomcRebootKey") + "\\RebootRequired") != 0;
    } catch (e) {
        log("cannot read RebootRequired of HKLM\\" + Session.Property("DcomcRebootKey") +
            ": scheduling a reboot.");
    }
    if (needed) {
        Session.Property("DCOMC_REBOOT_REQUIRED") = "1";
        log("a setting Windows reads at startup changed: reboot required (REBOOT=" +
            Session.Property("REBOOT") + ").");
    }
    return 1;
}

// A line of the MSI log (msiMessageTypeInfo).
function log(text) {
    try {
        var record = Session.Installer.CreateRecord(0);
        record.StringData(0) = "dcomc: " + text;
        Session.Message(0x04000000, record);
    } catch (e) {
        // no log: nothing else depends on it
    }
}

function Prepare() {
    var folder = Session.Property("DCOMC_INSTALLDIR");
    var fields = [Session.Property("System64Folder") + "cmd.exe", Session.Property("POWERSHELLEXE"),
                  folder + ENTRY, folder + Session.Property("DcomcDataFile"),
                  Session.Property("DcomcBackupName"), Session.Property("System64Folder") + "reg.exe",
                  "HKLM\\" + Session.Property("DcomcRebootKey"), Session.Property("DcomcForce")];
    var i;
    if (!switchSafe(fields[PATHS])) {
        report("DcomcForce holds '" + fields[PATHS] + "': only -Force or nothing.");
        return 3;
    }
    for (i = 0; i < PATHS; i++) {
        if (!cmdSafe(fields[i])) {
            report("cannot start PowerShell with the path '" + fields[i] + "': a path with % or " +
                   "a double quote would change on cmd.exe's command line; install into " +
                   "another folder (DCOMC_INSTALLDIR).");
            return 3;
        }
    }
    for (var n = 1; Session.Property("DCOMC_ACCOUNT_" + n) != ""; n++) {
        var account = Session.Property("DCOMC_ACCOUNT_" + n);
        if (!lineSafe(account)) {
            report("DCOMC_ACCOUNT_" + n + " holds a control character.");
            return 3;
        }
        fields.push(account, Session.Property("DCOMC_PASSWORD_" + n));
    }
    for (i = 0; i < fields.length; i++) {
        fields[i] = toBase64(fields[i]);
    }
    Session.Property("DcomcApply") = fields.join("\t");
    return 1;
}

// Until the process has exited. After its output ended (`ended`) it is exiting: its status
// changes within moments, and is polled. Otherwise the engine may run for minutes, and a poll
// loop would keep a core busy all that time: there is no WScript.Sleep in an MSI's script host,
// so each poll waits a second in PING.EXE (beside cmd.exe in System32), hidden, run to its end.
function waitForExit(process, cmd, ended) {
    var spins = ended ? 100000 : 0;
    var ping = '"' + cmd.replace(/[^\\]*$/, "") + 'PING.EXE" -n 2 127.0.0.1';
    var shell = null;
    while (process.Status == 0) {
        if (spins > 0) {
            spins--;
        } else if (shell !== false) {
            try {
                shell = shell || new ActiveXObject("WScript.Shell");
                shell.Run(ping, 0, true);
            } catch (e) {
                shell = false; // no PING.EXE to wait in: poll, rather than fail the install
            }
        }
    }
}

function Apply() {
    var fields = Session.Property("CustomActionData").split("\t");
    if (fields.length < FIXED || (fields.length - FIXED) % 2 != 0) {
        return 3;
    }
    var paths = [];
    var i;
    for (i = 0; i < FIXED; i++) {
        paths.push(fromBase64(fields[i]));
        if (paths[i] === null || (i < PATHS ? !cmdSafe(paths[i]) : !switchSafe(paths[i]))) {
            return 3;
        }
    }
    var lines = [];
    for (i = FIXED; i < fields.length; i += 2) {
        var account = fromBase64(fields[i]);
        if (account === null || !lineSafe(account) || !isBase64(fields[i + 1])) {
            return 3;
        }
        if (fields[i + 1] != "") { // no password given (a repair): the engine needs none or fails
            lines.push(fields[i] + "\t" + fields[i + 1] + "\n"); // both still Base64: any code page
        }
    }
    fields = null;
    // cmd /s /c: the first and the last quote of the rest are removed, and the line run as is.
    var command = '"' + paths[0] + '" /d /v:off /s /c ""' + paths[1] + '"' + FLAGS +
        ' -File "' + paths[2] + '" -PasswordsFromStdin -Mode Apply -DataFile "' + paths[3] +
        '" -BackupName "' + paths[4] + '"' + (paths[PATHS] != "" ? " " + paths[PATHS] : "") +
        ' 2>&1' + rebootTail(paths[5], paths[6]) + '"';
    var process = new ActiveXObject("WScript.Shell").Exec(command);
    var written = true;
    try {
        process.StdIn.Write(lines.join(""));
        process.StdIn.Close();
    } catch (e) {
        written = false; // the engine ended before reading: it failed, its exit code says how
    }
    lines = null;
    var ended = true;
    try {
        // Blocks, without using the processor, until the engine and cmd.exe have exited and
        // closed the pipe (standard error goes into it too); the engine's log keeps the text.
        process.StdOut.ReadAll();
    } catch (e) {
        ended = false; // a host that cannot read the pipe: the engine may still run for minutes
    }
    waitForExit(process, paths[0], ended);
    var code = -1;
    try {
        code = process.ExitCode;
    } catch (e) {
        code = -1; // an unknown result is a failure, never a silent success
    }
    return code == 0 && written ? 1 : 3;
}
