//! Test harness: runs the real `adserver` binary on loopback and speaks HTTP/1.1 to it.
#![allow(dead_code)]

pub mod dsp;
pub mod dspsim;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const DRIVERS: [&str; 2] = ["uring", "legacy"];

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn shared_data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Server {
    pub addr: SocketAddr,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts adserver with 2 shards on `driver`; `extra` is appended to the generated TOML.
    pub fn start(driver: &str, extra: &str) -> Server {
        Self::start_with_catalog(driver, &fixture("catalog.json"), extra)
    }

    /// Like [`Server::start`] with another catalog file.
    pub fn start_with_catalog(driver: &str, catalog: &std::path::Path, extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        // Exploration and Thompson draws change prices at random: off unless a test sets [model].
        let model = if extra.contains("[model]") {
            ""
        } else {
            "[model]\nexplore_enabled = false\nthompson_enabled = false\n"
        };
        let cfg = format!(
            "[server]\nlisten = \"{addr}\"\nshards = 2\ndriver = \"{driver}\"\npin_cores = false\ndrain_timeout_ms = 3000\n\
             [catalog]\npath = \"{}\"\n{model}{extra}",
            catalog.display()
        );
        let cfg_path = dir.path().join("adserver.toml");
        std::fs::write(&cfg_path, cfg).unwrap();
        // The working directory is the test's own: the default budget.wal_dir lands there.
        let child = Command::new(env!("CARGO_BIN_EXE_adserver"))
            .arg("--config")
            .arg(&cfg_path)
            .arg("serve")
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawning adserver");
        let mut server = Server {
            addr,
            child: Some(child),
            _dir: dir,
        };
        server.wait_healthy();
        server.wait_ready();
        server
    }

    /// Waits until `/ready` answers 200: every shard has its first budget grants, so a test
    /// asserting which campaign wins does not see a campaign skipped for a lot still on its way.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = try_request(self.addr, &get("/ready"))
                && r.status == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("adserver on {} not ready within 20 s", self.addr);
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = try_request(self.addr, &get("/health"))
                && r.status == 200
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("adserver exited during start: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("adserver did not become healthy on {}", self.addr);
    }

    pub fn request(&self, raw: &[u8]) -> Resp {
        try_request(self.addr, raw).expect("request failed")
    }

    pub fn auction(&self, body: &[u8]) -> Resp {
        self.request(&post_json("/openrtb2/auction", body))
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, sig: i32) {
        let child = self.child.as_ref().expect("running");
        unsafe {
            libc::kill(child.id() as i32, sig);
        }
    }

    /// Sends SIGTERM and waits for the exit (bounded).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("adserver did not exit within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

pub fn post_json(path: &str, body: &[u8]) -> Vec<u8> {
    post(path, "application/json", body)
}

pub fn post(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

pub fn try_request(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(raw)?;
    let mut buf = Vec::new();
    read_response(&mut s, &mut buf)
}

/// Reads one response from `s`; `buf` carries bytes already read past previous responses.
pub fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Resp> {
    loop {
        if let Some((resp, used)) = parse_response(buf) {
            buf.drain(..used);
            return Ok(resp);
        }
        let mut chunk = [0u8; 16384];
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("connection closed after {} bytes", buf.len()),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn parse_response(buf: &[u8]) -> Option<(Resp, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(buf).ok()? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return None,
    };
    let hs: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let len: usize = hs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().parse().unwrap())
        .unwrap_or(0);
    if buf.len() < head + len {
        return None;
    }
    Some((
        Resp {
            status: r.code.unwrap(),
            headers: hs,
            body: buf[head..head + len].to_vec(),
        },
        head + len,
    ))
}
