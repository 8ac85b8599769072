//! A throwaway `redis-server` on 127.0.0.1 for tests and benchmarks: no persistence, its own
//! temporary directory, killed when dropped. Restartable on the same port (the data is lost,
//! which is what a counter-loss test needs).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("redis-server not found: run scripts/install-deps.sh")]
    NotFound,
    #[error("redis-server: {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("redis-server on port {port} did not answer PING within {ms} ms: {log}")]
    NotReady { port: u16, ms: u64, log: String },
    #[error("redis-server on port {port} exited at start ({status}): {log}")]
    Exited {
        port: u16,
        status: std::process::ExitStatus,
        log: String,
    },
}

/// Milliseconds to wait for a started server to answer PING.
const READY_TIMEOUT_MS: u64 = 5_000;

/// Fresh ports tried by [`RedisProcess::start`] when a server exits at start (the free port was
/// taken between probing and binding, e.g. by another test's client).
const START_ATTEMPTS: usize = 4;

/// A running `redis-server` child process.
#[derive(Debug)]
pub struct RedisProcess {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    binary: PathBuf,
}

/// The `redis-server` binary on PATH (or `valkey-server`), if any.
pub fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in ["redis-server", "valkey-server"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

fn free_port() -> Result<u16, ProcessError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|source| ProcessError::Io {
        what: "finding a free port",
        source,
    })?;
    let port = l.local_addr().map_err(|source| ProcessError::Io {
        what: "local_addr",
        source,
    })?;
    Ok(port.port())
}

impl RedisProcess {
    /// Starts a server on a free loopback port with `dir` as its working directory
    /// (`--save '' --appendonly no`: nothing persists) and waits until it accepts connections.
    pub fn start(dir: &Path) -> Result<RedisProcess, ProcessError> {
        let binary = find_binary().ok_or(ProcessError::NotFound)?;
        let mut attempt = 1;
        loop {
            let mut p = RedisProcess {
                child: None,
                port: free_port()?,
                dir: dir.into(),
                binary: binary.clone(),
            };
            match p.spawn() {
                Ok(()) => return Ok(p),
                Err(ProcessError::Exited { .. }) if attempt < START_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    fn spawn(&mut self) -> Result<(), ProcessError> {
        let log = self.dir.join(format!("redis-{}.log", self.port));
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--logfile", log.to_str().unwrap_or("redis.log")])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| ProcessError::Io {
                what: "spawn",
                source,
            })?;
        self.child = Some(child);
        self.wait_ready(&log)
    }

    /// Ready means the server answered `PING` with `+PONG`: a bare successful connect is not
    /// enough, because a loopback connect to a port nobody listens on can connect to itself
    /// (TCP simultaneous open) and a server that failed to bind would then look alive.
    fn wait_ready(&mut self, log: &Path) -> Result<(), ProcessError> {
        let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
        while Instant::now() < deadline {
            if let Some(status) = self.exit_status() {
                self.child = None;
                return Err(ProcessError::Exited {
                    port: self.port,
                    status,
                    log: std::fs::read_to_string(log).unwrap_or_default(),
                });
            }
            if self.answers_ping() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(log).unwrap_or_default();
        self.kill();
        Err(ProcessError::NotReady {
            port: self.port,
            ms: READY_TIMEOUT_MS,
            log,
        })
    }

    fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    fn answers_ping(&self) -> bool {
        let timeout = Duration::from_millis(200);
        let Ok(mut conn) = TcpStream::connect_timeout(&self.addr(), timeout) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(timeout));
        let mut reply = [0u8; 7];
        conn.write_all(b"PING\r\n").is_ok()
            && conn.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills the server (SIGKILL: every counter is lost).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts a fresh, empty one on the same port.
    pub fn restart(&mut self) -> Result<(), ProcessError> {
        self.kill();
        self.spawn()
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
