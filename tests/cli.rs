//! The command line: check-config over every shipped example, config errors, --version.

use std::process::Command;

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

#[test]
fn every_example_config_passes_check_config() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("config/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let out = sluice()
            .arg("check-config")
            .arg(&path)
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed: {}{}",
            path.display(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(": OK"), "{stdout}");
        assert!(stdout.contains("pool \""), "no pool described: {stdout}");
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} example configs found");
}

#[test]
fn a_bad_config_names_file_key_and_reason_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[pools]]\nname = \"a\"\nlisten = \"127.0.0.1:7000\"\nmaster = \"127.0.0.1:6379\"\nread_from = \"replcia\"\n",
    )
    .expect("write");
    for args in [vec!["check-config"], vec!["proxy", "--config"]] {
        let out = sluice().args(&args).arg(&path).output().expect("run");
        assert!(!out.status.success(), "{args:?} accepted a bad config");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("bad.toml"), "{stderr}");
        assert!(
            stderr.contains(
                "pools[0].read_from: unknown value \"replcia\", expected one of master, replica, prefer-replica"
            ),
            "{stderr}"
        );
    }
    let out = sluice()
        .args(["check-config", "/nonexistent/sluice.toml"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/sluice.toml"));
}

#[test]
fn version_is_printed() {
    let out = sluice().arg("--version").output().expect("run");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("sluice {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_taken_listen_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.toml");
    std::fs::write(
        &path,
        format!("[[pools]]\nname = \"a\"\nlisten = \"{addr}\"\nmaster = \"127.0.0.1:1\"\n"),
    )
    .expect("write");
    let out = sluice()
        .args(["proxy", "-c"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

#[test]
fn a_stack_base_port_without_room_is_a_clear_error() {
    let out = sluice()
        .args(["stack", "standalone", "--base-port", "65530"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--base-port 65530") && stderr.contains("base + 12"),
        "{stderr}"
    );
}
