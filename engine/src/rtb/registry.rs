//! The DSP registry: `[[dsp]]` entries from the configuration (and the optional `rtb.dsp_file`),
//! checked once at start and frozen into an immutable [`Registry`] shared behind an `Arc`.
//!
//! Owns: the entry format, its validation (errors name the entry by index and id, and the field),
//! endpoint URL parsing and name resolution (at start only). Must not know: health or selection.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalog::Format;

/// One `[[dsp]]` entry as written in TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DspSpec {
    /// Unique id (letters, digits, `-`, `_`, `.`); the `dsp` label of its metrics.
    pub id: String,
    /// Initial tier: 1 premium (always called), 2 regional (same region and healthy), 3
    /// opportunistic (premium inventory only). Health scores reassign it at run time.
    pub tier: u8,
    /// Disabled entries are checked but never called.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Outbound requests per second to this DSP from the whole process (split over shards).
    pub qps_max: u32,
    /// Longest wait for this DSP, ms (also capped by rtb.global_timeout_ms).
    pub timeout_ms: u64,
    /// Formats it buys: "banner", "video", "native".
    pub formats: Vec<String>,
    /// Endpoint URL per region (`http://host:port/path`); a DSP with one region is regional.
    pub endpoints: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

/// The file named by `rtb.dsp_file`: only `[[dsp]]` entries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DspFile {
    #[serde(default)]
    dsp: Vec<DspSpec>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RegistryError {
    #[error("{file}: dsp[{index}] (id {id:?}): {field}: {message}")]
    Entry {
        file: String,
        index: usize,
        id: String,
        field: String,
        message: String,
    },
    #[error("{file}: {message}")]
    File { file: String, message: String },
}

/// DSP tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Premium = 1,
    Regional = 2,
    Opportunistic = 3,
    /// Score under 30: not called until the score recovers.
    Suspended = 4,
}

impl Tier {
    pub fn from_number(n: u8) -> Option<Tier> {
        match n {
            1 => Some(Tier::Premium),
            2 => Some(Tier::Regional),
            3 => Some(Tier::Opportunistic),
            4 => Some(Tier::Suspended),
            _ => None,
        }
    }

    pub fn number(self) -> u8 {
        self as u8
    }
}

/// One resolved endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub region: String,
    pub addr: SocketAddr,
    /// `Host` header value (host[:port] as written).
    pub host: String,
    /// Request target, e.g. `/openrtb2/auction`.
    pub path: String,
}

/// One enabled DSP, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Dsp {
    /// Position in [`Registry::dsps`]; indexes every per-DSP table.
    pub index: usize,
    pub id: String,
    pub tier: Tier,
    pub qps_max: u32,
    pub timeout: Duration,
    /// Bit set of [`Format::bit`].
    pub formats_mask: u8,
    pub endpoints: Vec<Endpoint>,
}

impl Dsp {
    /// The endpoint for `region`, if the DSP has one there.
    pub fn endpoint_in(&self, region: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.region == region)
    }
}

/// Every enabled DSP; immutable once built.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    pub dsps: Vec<Dsp>,
}

impl Registry {
    /// Builds the registry from the entries of `file` (inline `[[dsp]]`) and of `extra_file`
    /// (`rtb.dsp_file`, "" = none). `timeout_cap_ms` is rtb.absolute_cutoff_ms.
    pub fn build(
        file: &str,
        inline: &[DspSpec],
        extra_file: &str,
        timeout_cap_ms: u64,
    ) -> Result<Registry, RegistryError> {
        let mut entries: Vec<(String, usize, DspSpec)> = inline
            .iter()
            .enumerate()
            .map(|(i, s)| (file.to_string(), i, s.clone()))
            .collect();
        if !extra_file.is_empty() {
            for (i, s) in load_file(extra_file)?.into_iter().enumerate() {
                entries.push((extra_file.to_string(), i, s));
            }
        }
        let mut dsps = Vec::new();
        let mut seen: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for (file, index, spec) in entries {
            let err = |field: &str, message: String| RegistryError::Entry {
                file: file.clone(),
                index,
                id: spec.id.clone(),
                field: field.to_string(),
                message,
            };
            if let Some((f, i)) = seen.get(&spec.id) {
                return Err(err("id", format!("duplicate of {f} dsp[{i}]")));
            }
            seen.insert(spec.id.clone(), (file.clone(), index));
            let dsp =
                check_entry(&spec, dsps.len(), timeout_cap_ms).map_err(|(f, m)| err(&f, m))?;
            if spec.enabled {
                dsps.push(dsp);
            }
        }
        Ok(Registry { dsps })
    }

    pub fn len(&self) -> usize {
        self.dsps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dsps.is_empty()
    }

    pub fn by_id(&self, id: &str) -> Option<&Dsp> {
        self.dsps.iter().find(|d| d.id == id)
    }
}

fn load_file(path: &str) -> Result<Vec<DspSpec>, RegistryError> {
    let text = std::fs::read_to_string(path).map_err(|e| RegistryError::File {
        file: path.to_string(),
        message: format!("cannot read: {e}"),
    })?;
    let parsed: DspFile = toml::from_str(&text).map_err(|e| RegistryError::File {
        file: path.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    Ok(parsed.dsp)
}

type FieldError = (String, String);

fn check_entry(spec: &DspSpec, index: usize, timeout_cap_ms: u64) -> Result<Dsp, FieldError> {
    let fail = |f: &str, m: String| Err((f.to_string(), m));
    let id_ok = !spec.id.is_empty()
        && spec.id.len() <= 64
        && spec
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !id_ok {
        return fail(
            "id",
            "must be 1-64 characters of letters, digits, '-', '_' or '.'".into(),
        );
    }
    let Some(tier) = Tier::from_number(spec.tier).filter(|t| *t != Tier::Suspended) else {
        return fail("tier", format!("{} is not 1, 2 or 3", spec.tier));
    };
    if spec.qps_max == 0 {
        return fail("qps_max", "must be > 0".into());
    }
    if spec.timeout_ms == 0 || spec.timeout_ms > timeout_cap_ms {
        return fail(
            "timeout_ms",
            format!(
                "{} is not within 1..={timeout_cap_ms} (rtb.absolute_cutoff_ms)",
                spec.timeout_ms
            ),
        );
    }
    let mut formats_mask = 0u8;
    for f in &spec.formats {
        formats_mask |= match f.as_str() {
            "banner" => Format::Banner.bit(),
            "video" => Format::Video.bit(),
            "native" => Format::Native.bit(),
            other => {
                return fail(
                    "formats",
                    format!("{other:?} is not \"banner\", \"video\" or \"native\""),
                );
            }
        };
    }
    if formats_mask == 0 {
        return fail("formats", "must name at least one format".into());
    }
    if spec.endpoints.is_empty() {
        return fail(
            "endpoints",
            "must name at least one region's endpoint".into(),
        );
    }
    let mut endpoints = Vec::with_capacity(spec.endpoints.len());
    for (region, url) in &spec.endpoints {
        let field = format!("endpoints.{region}");
        if region.is_empty() {
            return fail("endpoints", "region names must not be empty".into());
        }
        let (host, addr, path) = parse_http_url(url).map_err(|m| (field.clone(), m))?;
        endpoints.push(Endpoint {
            region: region.clone(),
            addr,
            host,
            path,
        });
    }
    Ok(Dsp {
        index,
        id: spec.id.clone(),
        tier,
        qps_max: spec.qps_max,
        timeout: Duration::from_millis(spec.timeout_ms),
        formats_mask,
        endpoints,
    })
}

/// Splits `http://host[:port][/path]` into (Host header, resolved address, path). Names are
/// resolved here, once; at run time only addresses are used.
pub fn parse_http_url(url: &str) -> Result<(String, SocketAddr, String), String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!(
            "{url:?} is not an http:// URL (https is not supported)"
        ));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url:?} has no usable host"));
    }
    let with_port = if authority.starts_with('[') {
        if authority.contains("]:") {
            authority.to_string()
        } else {
            format!("{authority}:80")
        }
    } else if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{url:?}: cannot resolve {authority:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url:?}: {authority:?} resolves to no address"))?;
    Ok((authority.to_string(), addr, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str) -> DspSpec {
        DspSpec {
            id: id.into(),
            tier: 2,
            enabled: true,
            qps_max: 100,
            timeout_ms: 80,
            formats: vec!["banner".into()],
            endpoints: [(
                "us-east".to_string(),
                "http://127.0.0.1:9001/bid".to_string(),
            )]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn good_entries_build_and_disabled_ones_are_left_out() {
        let mut off = spec("b");
        off.enabled = false;
        let r = Registry::build("a.toml", &[spec("a"), off, spec("c")], "", 120).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.dsps[1].id, "c");
        assert_eq!(r.dsps[1].index, 1);
        let e = &r.dsps[0].endpoints[0];
        assert_eq!(
            (e.host.as_str(), e.path.as_str()),
            ("127.0.0.1:9001", "/bid")
        );
        assert_eq!(e.addr, "127.0.0.1:9001".parse().unwrap());
    }

    #[test]
    fn bad_entries_are_named_by_index_id_and_field() {
        let mut s = spec("x1");
        s.tier = 5;
        let e = Registry::build("a.toml", &[spec("a"), s], "", 120).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.toml: dsp[1] (id \"x1\"): tier: 5 is not 1, 2 or 3"
        );
        let mut s = spec("x2");
        s.endpoints
            .insert("eu".into(), "https://e.example/bid".into());
        let e = Registry::build("a.toml", &[s], "", 120)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("a.toml: dsp[0] (id \"x2\"): endpoints.eu: "),
            "{e}"
        );
        let mut s = spec("x3");
        s.timeout_ms = 500;
        let e = Registry::build("a.toml", &[s], "", 120)
            .unwrap_err()
            .to_string();
        assert!(e.contains("timeout_ms: 500 is not within 1..=120"), "{e}");
        let mut s = spec("x4");
        s.formats = vec!["audio".into()];
        assert!(
            Registry::build("a.toml", &[s], "", 120)
                .unwrap_err()
                .to_string()
                .contains("formats: \"audio\"")
        );
        let e = Registry::build("a.toml", &[spec("d"), spec("d")], "", 120).unwrap_err();
        assert!(
            e.to_string()
                .contains("dsp[1] (id \"d\"): id: duplicate of a.toml dsp[0]")
        );
        let mut s = spec("bad id");
        s.qps_max = 0;
        assert!(
            Registry::build("a.toml", &[s], "", 120)
                .unwrap_err()
                .to_string()
                .contains(": id: must be")
        );
    }

    #[test]
    fn entries_from_a_separate_file_are_numbered_in_that_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dsps.toml");
        std::fs::write(
            &path,
            "[[dsp]]\nid = \"f1\"\ntier = 1\nqps_max = 10\ntimeout_ms = 90\nformats = [\"video\"]\n\
             endpoints = { us-east = \"http://127.0.0.1:1\" }\n\
             [[dsp]]\nid = \"f2\"\ntier = 1\nqps_max = 0\ntimeout_ms = 90\nformats = [\"video\"]\n\
             endpoints = { us-east = \"http://127.0.0.1:1\" }\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let e = Registry::build("a.toml", &[spec("a")], p, 120).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{p}: dsp[1] (id \"f2\"): qps_max: must be > 0")
        );
        std::fs::write(&path, "[[dsp]]\nid = 3\n").unwrap();
        let e = Registry::build("a.toml", &[], p, 120)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{p}: ")) && e.contains("line 2"),
            "{e}"
        );
    }

    #[test]
    fn urls_parse_with_default_port_and_path() {
        let (host, addr, path) = parse_http_url("http://127.0.0.1").unwrap();
        assert_eq!(
            (host.as_str(), addr.port(), path.as_str()),
            ("127.0.0.1", 80, "/")
        );
        let (_, addr, path) = parse_http_url("http://[::1]:81/x?y=1").unwrap();
        assert_eq!((addr.port(), path.as_str()), (81, "/x?y=1"));
        assert!(parse_http_url("ftp://x").is_err());
        assert!(parse_http_url("http://").is_err());
    }
}
