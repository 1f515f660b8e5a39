//! `tests/compat/redis-tcl.sh` cleans up after itself: the servers it starts for a unit run
//! in the background (and ignore SIGINT there), so any it does not stop outlive the script.
//! Here the proxy target cannot start (its `sluice` exits at once): each of the ten tries
//! starts a real redis-server first, and none may be left running afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory of its own under the system's temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The redis-server processes whose working directory is under `dir` (redis-server moves to
/// its `--dir`, and rewrites its command line, so the directory is what tells them apart).
fn servers_under(dir: &Path) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            comm.trim() == "redis-server" && cwd.starts_with(dir)
        })
        .collect()
}

#[test]
fn a_target_that_fails_to_start_leaves_no_server_running() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let scratch = Scratch(
        std::env::temp_dir().join(format!("sluice-tcl-script-{}-{nanos}", std::process::id())),
    );
    let dir = &scratch.0;
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("mkdir");
    // The suite's place, so the script needs no download: its runtest must not even run.
    let version = String::from_utf8_lossy(
        &Command::new("redis-server")
            .arg("--version")
            .output()
            .expect("redis-server --version")
            .stdout,
    )
    .split_whitespace()
    .find_map(|w| w.strip_prefix("v=").map(str::to_string))
    .expect("redis-server's version");
    let suite = dir.join("cache").join(format!("redis-{version}"));
    std::fs::create_dir_all(&suite).expect("mkdir");
    write_script(&suite.join("runtest"), "exit 3");
    let sluice = dir.join("sluice-that-fails");
    write_script(&sluice, "exit 1");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/redis-tcl.sh");
    // Into files, not pipes: a server left running would hold a pipe open and the wait for
    // its end would never return.
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let file = |p: &Path| std::fs::File::create(p).expect("create output file");
    let status = Command::new("bash")
        .arg(&script)
        .args(["unit/quit", "unit/info-command"])
        .env("TMPDIR", &tmp)
        .env("TCL_CACHE", dir.join("cache"))
        .env("SLUICE_BIN", &sluice)
        .env("TCL_TARGETS", "proxy")
        .stdin(std::process::Stdio::null())
        .stdout(file(&out_path))
        .stderr(file(&err_path))
        .status()
        .expect("run redis-tcl.sh");
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();

    let leaked = servers_under(dir);
    for pid in &leaked {
        // Stopped here either way: a test leaves no process behind.
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    assert!(status.success(), "{stdout}{stderr}");
    assert_eq!(
        stdout.matches("start-failed").count(),
        2,
        "both units report the failed start: {stdout}"
    );
    assert!(leaked.is_empty(), "redis-servers left running: {leaked:?}");
}
