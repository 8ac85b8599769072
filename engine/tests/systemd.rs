//! Runs adserver the way `systemd/adserver.service` does (its ExecStart arguments, a fake
//! NOTIFY_SOCKET, WATCHDOG_USEC) and checks the notify protocol: READY=1 only once the port answers,
//! WATCHDOG=1 pings while the shards are alive, STOPPING=1 on SIGTERM, then exit 0.
//! Also checks the unit files with `systemd-analyze verify` when it is installed (CI installs it).

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture, get, try_request};

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// The unit's ExecStart, split into the binary and its arguments.
fn unit_exec_start() -> (String, Vec<String>) {
    let unit = std::fs::read_to_string(repo_file("systemd/adserver.service")).unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("adserver.service has an ExecStart");
    let mut words = line.split_whitespace().map(str::to_owned);
    let bin = words.next().unwrap();
    (bin, words.collect())
}

/// Every notification received, one `KEY=VALUE` line each, in order.
struct NotifySocket {
    sock: UnixDatagram,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(path: &Path) -> NotifySocket {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        NotifySocket {
            sock,
            seen: Vec::new(),
        }
    }

    /// Reads until a line starting with `prefix` arrives; panics after `within`.
    fn wait_for(&mut self, prefix: &str, within: Duration, child: &mut Child) -> String {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(line) = self.seen.iter().find(|l| l.starts_with(prefix)) {
                let line = line.clone();
                self.seen.retain(|l| *l != line);
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no {prefix} within {within:?}; got {:?}",
                self.seen
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "adserver exited ({status}) before {prefix}; got {:?}",
                    self.seen
                );
            }
            if let Ok(n) = self.sock.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.extend(text.lines().map(str::to_owned));
            }
        }
    }
}

fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn notify_protocol_ready_watchdog_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let cfg_path = dir.path().join("adserver.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[server]\nlisten = \"{addr}\"\nshards = 2\npin_cores = false\nheartbeat_ms = 50\n\
             drain_timeout_ms = 2000\n[catalog]\npath = \"{}\"\n",
            fixture("catalog.json").display()
        ),
    )
    .unwrap();
    let (bin, args) = unit_exec_start();
    assert!(bin.ends_with("/adserver"), "ExecStart runs {bin}");
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            if a == "/etc/adcore/adserver.toml" {
                cfg_path.display().to_string()
            } else {
                a
            }
        })
        .collect();
    let sock_path = dir.path().join("notify.sock");
    let mut notify = NotifySocket::bind(&sock_path);
    let mut child = Command::new(env!("CARGO_BIN_EXE_adserver"))
        .args(&args)
        .env("NOTIFY_SOCKET", &sock_path)
        // As systemd's StateDirectory= does: the budget WAL goes there.
        .env("STATE_DIRECTORY", dir.path())
        .env("WATCHDOG_USEC", "400000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    notify.wait_for("READY=1", Duration::from_secs(30), &mut child);
    let health = try_request(addr, &get("/health")).expect("listening when READY=1 arrives");
    assert_eq!(health.status, 200);
    let status = notify.wait_for("STATUS=", Duration::from_secs(1), &mut child);
    assert!(status.contains("2 shards"), "{status}");
    assert!(status.contains("budget warm"), "{status}");
    let ready = try_request(addr, &get("/ready")).unwrap();
    assert_eq!(
        ready.status,
        200,
        "{}",
        String::from_utf8_lossy(&ready.body)
    );

    for _ in 0..3 {
        notify.wait_for("WATCHDOG=1", Duration::from_secs(5), &mut child);
    }

    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    notify.wait_for("STOPPING=1", Duration::from_secs(5), &mut child);
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "exit status {exit}");
}

#[test]
fn without_notify_socket_the_server_runs_as_before() {
    let mut server = common::Server::start("legacy", "");
    assert_eq!(server.request(&get("/health")).status, 200);
    assert!(server.terminate().success());
}

/// `systemd-analyze verify` on both units. Verify checks that ExecStart's binary exists, so each
/// unit is verified from a copy whose `/opt/adcore/bin/...` points at an executable on this machine
/// (the adserver just built; `/bin/true` for dsp-sim, built by another crate). CI installs
/// systemd-analyze; a machine without it fails here with the install hint.
#[test]
fn unit_files_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("systemd-analyze not found: run scripts/install-deps.sh");
    }
    let dir = tempfile::tempdir().unwrap();
    for (unit, exe) in [
        ("adserver.service", env!("CARGO_BIN_EXE_adserver")),
        ("dsp-sim.service", "/bin/true"),
    ] {
        let text = std::fs::read_to_string(repo_file(&format!("systemd/{unit}"))).unwrap();
        let name = unit.trim_end_matches(".service");
        let copy = dir.path().join(unit);
        std::fs::write(&copy, text.replace(&format!("/opt/adcore/bin/{name}"), exe)).unwrap();
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&copy)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{unit}: systemd-analyze verify failed ({}):\n{stderr}",
            out.status
        );
    }
}
