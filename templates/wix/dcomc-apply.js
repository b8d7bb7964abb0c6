// dcomc-apply.js - the deferred custom action of a dcomc MSI that needs passwords.
//
// It runs as LocalSystem, after the payload is installed. Its CustomActionData (hidden from
// the MSI log by MsiHiddenProperties) holds, separated by TAB: powershell.exe, the entry
// script, the data file, the backup name, then account and password pairs. The passwords go
// to PowerShell's STANDARD INPUT, never onto its command line, so no process listing shows
// them; the engine turns them into SecureStrings and never writes them anywhere.
//
// Returns 1 (success) only when the engine's exit code is 0; 3 (failure) otherwise, which
// makes Windows Installer roll the installation back.
function Apply() {
    var fields = Session.Property("CustomActionData").split("\t");
    if (fields.length < 4) {
        return 3;
    }
    var command = '"' + fields[0] + '" -NoProfile -NonInteractive -ExecutionPolicy Bypass' +
        ' -File "' + fields[1] + '" -PasswordsFromStdin -Mode Apply -DataFile "' + fields[2] +
        '" -BackupName "' + fields[3] + '"';
    var shell = new ActiveXObject("WScript.Shell");
    var process = shell.Exec(command);
    for (var i = 4; i + 1 < fields.length; i += 2) {
        process.StdIn.Write(fields[i] + "\t" + fields[i + 1] + "\n");
    }
    process.StdIn.Close();
    fields = null;
    try {
        // Blocks until the engine exits (it closes its output); its log file keeps the text.
        process.StdOut.ReadAll();
        process.StdErr.ReadAll();
    } catch (e) {
        // Some hosts cannot read the pipes; fall back to polling below.
    }
    while (process.Status == 0) {
        // WshExec has no wait method.
    }
    var code = -1;
    try {
        code = process.ExitCode;
    } catch (e) {
        code = -1; // an unknown result is a failure, never a silent success
    }
    return code == 0 ? 1 : 3;
}
