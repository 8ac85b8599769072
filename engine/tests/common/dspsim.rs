//! The real `tools` `dsp-sim` binary as the DSP side of engine tests: started with a TOML
//! population on loopback, its `--ports-file` listing read back, its fault modes and latency
//! switched at runtime and its notice counters read over its control port. The child is killed
//! when dropped.
//!
//! `engine` cannot depend on `tools`, so the binary is found next to `adserver` (where
//! `cargo test --workspace` puts it). When missing (e.g. `cargo test -p engine`), it is built once
//! with the invoking cargo into a separate target directory: the outer `cargo test` holds the
//! lock of its own target directory while tests run, so building there would deadlock.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{Resp, get, post_json, try_request};

pub struct DspSim {
    child: Child,
    pub control: SocketAddr,
    dsps: Vec<(String, SocketAddr)>,
    _dir: tempfile::TempDir,
}

/// Path of a usable `dsp-sim` binary (built once per test process when missing).
pub fn binary() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_adserver")).parent().unwrap();
        let beside = bin_dir.join("dsp-sim");
        if beside.exists() {
            return beside;
        }
        build_separately(bin_dir)
    })
    .clone()
}

fn build_separately(bin_dir: &Path) -> PathBuf {
    let profile = bin_dir.file_name().unwrap().to_str().unwrap().to_string();
    let target = bin_dir.parent().unwrap().join("dsp-sim-for-tests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "-p", "tools", "--bin", "dsp-sim"])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target);
    if profile == "release" {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("running cargo build for dsp-sim");
    assert!(status.success(), "building dsp-sim failed: {status}");
    let built = target.join(&profile).join("dsp-sim");
    assert!(built.exists(), "{} missing after build", built.display());
    built
}

impl DspSim {
    /// Starts `dsp-sim --config` with `config` (dsp-sim's TOML format) and reads its listing.
    pub fn start(config: &str) -> DspSim {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("dsp-sim.toml");
        std::fs::write(&cfg, config).unwrap();
        let ports = dir.path().join("ports.json");
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(&cfg)
            .arg("--ports-file")
            .arg(&ports)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawning dsp-sim");
        let end = Instant::now() + Duration::from_secs(20);
        while !ports.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("dsp-sim exited during start: {status}");
            }
            assert!(Instant::now() < end, "dsp-sim wrote no ports file");
            std::thread::sleep(Duration::from_millis(20));
        }
        let listing: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&ports).unwrap()).unwrap();
        let control = listing["control"].as_str().unwrap().parse().unwrap();
        let dsps = listing["dsps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["id"].as_str().unwrap().to_string(),
                    d["addr"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect();
        DspSim {
            child,
            control,
            dsps,
            _dir: dir,
        }
    }

    pub fn addr(&self, id: &str) -> SocketAddr {
        self.dsps
            .iter()
            .find(|(d, _)| d == id)
            .unwrap_or_else(|| panic!("dsp-sim has no DSP {id}"))
            .1
    }

    /// `[[dsp]]` registry entry for the adserver pointing at this simulated DSP (region us-east).
    pub fn registry_toml(&self, id: &str, tier: u8, timeout_ms: u64) -> String {
        format!(
            "[[dsp]]\nid = \"{id}\"\ntier = {tier}\nqps_max = 100000\ntimeout_ms = {timeout_ms}\n\
             formats = [\"banner\", \"video\", \"native\"]\n\
             endpoints = {{ us-east = \"http://{}/openrtb2/auction\" }}\n",
            self.addr(id)
        )
    }

    fn post(&self, path: &str, body: &str) -> Resp {
        try_request(self.control, &post_json(path, body.as_bytes())).expect("dsp-sim control")
    }

    /// Switches a fault mode (`none`, `stall`, `reset`, `half_written`, `malformed`, `http_5xx`)
    /// for every request of `id` from now on.
    pub fn set_fault(&self, id: &str, mode: &str) {
        let r = self.post(
            &format!("/dsp/{id}/fault"),
            &format!(r#"{{"mode":"{mode}","share":1.0}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }

    /// Sets a fixed answer latency for `id`.
    pub fn set_latency_ms(&self, id: &str, ms: f64) {
        let r = self.post(
            &format!("/dsp/{id}/latency"),
            &format!(r#"{{"latency":{{"dist":"lognormal","median_ms":{ms},"sigma":0}}}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }

    /// `GET /notices?dsp=ID`: `{"counters": {..}, "notices": [{kind, params, at_ms}]}`.
    pub fn notices(&self, id: &str) -> serde_json::Value {
        let r = try_request(self.control, &get(&format!("/notices?dsp={id}"))).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    pub fn counter(&self, id: &str, name: &str) -> u64 {
        self.notices(id)["counters"][name].as_u64().unwrap()
    }

    /// Waits (bounded) until `id` has received `n` notices in all; returns them.
    pub fn wait_notices(&self, id: &str, n: usize, within: Duration) -> Vec<serde_json::Value> {
        let end = Instant::now() + within;
        loop {
            let got = self.notices(id)["notices"].as_array().unwrap().clone();
            if got.len() >= n || Instant::now() > end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A notice's query parameter (percent-decoded by dsp-sim).
pub fn param<'a>(notice: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    notice["params"]
        .as_array()?
        .iter()
        .find(|p| p[0] == name)?
        .get(1)?
        .as_str()
}

impl Drop for DspSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
