//! OpenRTB 2.6 bid request generation and the pre-built request pool the clients
//! cycle through. Every pool entry is a complete HTTP/1.1 request whose `id` is a
//! fixed-width decimal field patched in place per send, so sending allocates nothing.
//! Knows nothing of sockets, schedules or reports.

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::Serialize;

use super::config::{RequestMix, Target};
use super::population::{Population, User};

/// Width of the decimal request id (fits any `u64`).
pub const ID_DIGITS: usize = 20;
const ID_PREFIX: &[u8] = b"{\"id\":\"";
const ID_PLACEHOLDER: &str = "00000000000000000000";

/// Banner sizes drawn uniformly for banner impressions.
pub const BANNER_SIZES: [(u16, u16); 6] = [
    (300, 250),
    (728, 90),
    (320, 50),
    (300, 600),
    (160, 600),
    (970, 250),
];

const DOMAINS: [&str; 12] = [
    "dailyherald.example",
    "techpulse.example",
    "sportsdesk.example",
    "recipebox.example",
    "autotrader-news.example",
    "travelnotes.example",
    "financewire.example",
    "gamerzone.example",
    "healthline-today.example",
    "weatherwatch.example",
    "moviebuzz.example",
    "homegarden.example",
];
const SECTIONS: [&str; 6] = ["news", "sports", "tech", "life", "money", "travel"];
const APPS: [&str; 8] = [
    "puzzlequest",
    "newsreader",
    "fittrack",
    "musicbox",
    "weatherpro",
    "chessmaster",
    "recipes",
    "photoedit",
];
const CATEGORIES: [&str; 12] = [
    "IAB1", "IAB2", "IAB3", "IAB5", "IAB7", "IAB8", "IAB9", "IAB12", "IAB13", "IAB17", "IAB19",
    "IAB20",
];

/// Why a request pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("cannot serialize a bid request: {0}")]
    Serialize(String),
    #[error("serialized bid request does not start with the fixed-width id field")]
    IdLayout,
    #[error("request pool would exceed {bytes_max} bytes; lower --pool")]
    PoolTooLarge { bytes_max: usize },
}

/// Upper bound on the memory held by the request pool.
pub const POOL_BYTES_MAX: usize = 1 << 30;

#[derive(Serialize)]
struct BidRequest<'a> {
    id: &'static str,
    imp: [Imp; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<Site<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<App>,
    device: Device<'a>,
    user: UserObj<'a>,
    at: u8,
    tmax: u32,
    cur: [&'static str; 1],
}

#[derive(Serialize)]
struct Imp {
    id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    banner: Option<Banner>,
    #[serde(skip_serializing_if = "Option::is_none")]
    video: Option<Video>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bidfloor: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bidfloorcur: Option<&'static str>,
    secure: u8,
    tagid: String,
}

#[derive(Serialize)]
struct Format {
    w: u16,
    h: u16,
}

#[derive(Serialize)]
struct Banner {
    w: u16,
    h: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<Vec<Format>>,
    pos: u8,
}

#[derive(Serialize)]
struct Video {
    mimes: [&'static str; 2],
    minduration: u32,
    maxduration: u32,
    protocols: [u8; 4],
    w: u16,
    h: u16,
    startdelay: i32,
    plcmt: u8,
    linearity: u8,
}

#[derive(Serialize)]
struct Publisher {
    id: String,
}

#[derive(Serialize)]
struct Site<'a> {
    id: String,
    domain: &'a str,
    page: String,
    publisher: Publisher,
    cat: Vec<&'static str>,
}

#[derive(Serialize)]
struct App {
    id: String,
    bundle: String,
    storeurl: String,
    publisher: Publisher,
    cat: Vec<&'static str>,
}

#[derive(Serialize)]
struct Geo<'a> {
    country: &'a str,
    region: &'a str,
    lat: f64,
    lon: f64,
    #[serde(rename = "type")]
    kind: u8,
}

#[derive(Serialize)]
struct Device<'a> {
    ua: &'a str,
    ip: &'a str,
    devicetype: u8,
    os: &'a str,
    make: &'a str,
    model: &'a str,
    geo: Geo<'a>,
}

#[derive(Serialize)]
struct UserObj<'a> {
    id: &'a str,
}

/// Appends one generated OpenRTB 2.6 request body for `user` to `out`. The body
/// starts with `{"id":"` followed by [`ID_DIGITS`] zeros, to be patched per send.
pub fn write_body<R: Rng + ?Sized>(
    rng: &mut R,
    user: &User,
    mix: &RequestMix,
    out: &mut Vec<u8>,
) -> Result<(), RequestError> {
    let on_site = rng.random_bool(probability(mix.site_share));
    let request = BidRequest {
        id: ID_PLACEHOLDER,
        imp: [random_imp(rng, probability(mix.video_share))],
        site: on_site.then(|| random_site(rng)),
        app: (!on_site).then(|| random_app(rng)),
        device: device_of(user),
        user: UserObj { id: &user.user_id },
        at: 1,
        tmax: mix.tmax_ms,
        cur: ["USD"],
    };
    let start = out.len();
    sonic_rs::to_writer(&mut *out, &request).map_err(|e| RequestError::Serialize(e.to_string()))?;
    if !out[start..].starts_with(ID_PREFIX) {
        return Err(RequestError::IdLayout);
    }
    Ok(())
}

/// Bot clients mixed in by `bot_share`: few device ids sending a lot, from cloud datacenter
/// ranges, with scripted or headless user agents. An integrity filter should flag them all.
const BOT_USER_AGENTS: [&str; 5] = [
    "python-requests/2.31.0",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];
/// Documentation-style datacenter prefixes (AWS, GCP, Azure, OVH, Hetzner public ranges).
const BOT_IP_PREFIXES: [&str; 5] = ["3.80.", "35.190.", "20.42.", "51.75.", "88.99."];
const BOT_CLIENTS: usize = 20;

fn bot_users() -> Vec<User> {
    (0..BOT_CLIENTS)
        .map(|k| User {
            user_id: format!("bot-{k:02}"),
            country: "USA".into(),
            region: "VA".into(),
            devicetype: 2,
            os: "Linux".into(),
            make: String::new(),
            model: String::new(),
            ip: format!("{}{}.{}", BOT_IP_PREFIXES[k % 5], k, 10 + k),
            ua: BOT_USER_AGENTS[k % BOT_USER_AGENTS.len()].into(),
            lat: 38.9,
            lon: -77.4,
            activity: 1.0,
        })
        .collect()
}

/// Clamps a share into [0, 1] (NaN counts as 0) so sampling cannot panic.
fn probability(share: f64) -> f64 {
    if share.is_nan() {
        0.0
    } else {
        share.clamp(0.0, 1.0)
    }
}

fn random_imp<R: Rng + ?Sized>(rng: &mut R, video_share: f64) -> Imp {
    let is_video = rng.random_bool(video_share);
    let has_floor = rng.random_bool(0.4);
    Imp {
        id: "1",
        banner: (!is_video).then(|| random_banner(rng)),
        video: is_video.then(|| random_video(rng)),
        bidfloor: has_floor.then(|| (rng.random_range(5..=200u32) as f64) / 100.0),
        bidfloorcur: has_floor.then_some("USD"),
        secure: 1,
        tagid: format!("slot-{}", rng.random_range(1..=40u32)),
    }
}

fn random_banner<R: Rng + ?Sized>(rng: &mut R) -> Banner {
    let (w, h) = BANNER_SIZES[rng.random_range(0..BANNER_SIZES.len())];
    let format = rng.random_bool(0.3).then(|| {
        let extra = BANNER_SIZES[rng.random_range(0..BANNER_SIZES.len())];
        let mut sizes = vec![Format { w, h }];
        if extra != (w, h) {
            sizes.push(Format {
                w: extra.0,
                h: extra.1,
            });
        }
        sizes
    });
    Banner {
        w,
        h,
        format,
        pos: if rng.random_bool(0.5) { 1 } else { 3 },
    }
}

fn random_video<R: Rng + ?Sized>(rng: &mut R) -> Video {
    let maxduration = [15, 30, 60][rng.random_range(0..3)];
    Video {
        mimes: ["video/mp4", "video/webm"],
        minduration: 5,
        maxduration,
        protocols: [2, 3, 5, 6],
        w: 640,
        h: 480,
        startdelay: 0,
        plcmt: rng.random_range(1..=2),
        linearity: 1,
    }
}

fn random_site<R: Rng + ?Sized>(rng: &mut R) -> Site<'static> {
    let d = rng.random_range(0..DOMAINS.len());
    let domain = DOMAINS[d];
    let section = SECTIONS[rng.random_range(0..SECTIONS.len())];
    Site {
        id: format!("site-{d}"),
        domain,
        page: format!(
            "https://{domain}/{section}/article-{}",
            rng.random_range(1..=5000u32)
        ),
        publisher: Publisher {
            id: format!("pub-{}", d % 5),
        },
        cat: random_categories(rng),
    }
}

fn random_app<R: Rng + ?Sized>(rng: &mut R) -> App {
    let a = rng.random_range(0..APPS.len());
    let bundle = format!("com.example.{}", APPS[a]);
    App {
        id: format!("app-{a}"),
        storeurl: format!("https://play.google.com/store/apps/details?id={bundle}"),
        bundle,
        publisher: Publisher {
            id: format!("pub-{}", 5 + a % 4),
        },
        cat: random_categories(rng),
    }
}

fn random_categories<R: Rng + ?Sized>(rng: &mut R) -> Vec<&'static str> {
    let n = rng.random_range(1..=2);
    (0..n)
        .map(|_| CATEGORIES[rng.random_range(0..CATEGORIES.len())])
        .collect()
}

fn device_of(user: &User) -> Device<'_> {
    Device {
        ua: &user.ua,
        ip: &user.ip,
        devicetype: user.devicetype,
        os: &user.os,
        make: &user.make,
        model: &user.model,
        geo: Geo {
            country: &user.country,
            region: &user.region,
            lat: user.lat,
            lon: user.lon,
            kind: 2,
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: usize,
    len: usize,
    /// Offset of the id digits within the entry; `None` for a fixed body.
    id_offset: Option<usize>,
    body_offset: usize,
    /// Sent by one of the bot clients (`RequestMix::bot_share`).
    bot: bool,
}

/// Pre-built complete HTTP requests, cycled through by request number.
#[derive(Debug)]
pub struct RequestPool {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    /// Added to the request number written as the request id (distinct ids across runs).
    id_base: u64,
}

impl RequestPool {
    /// Generates `pool_size` requests, each for a user drawn by activity weight.
    pub fn generated(
        target: &Target,
        population: &Population,
        mix: &RequestMix,
        pool_size: usize,
        seed: u64,
    ) -> Result<RequestPool, RequestError> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut pool = RequestPool {
            id_base: 0,
            bytes: Vec::new(),
            entries: Vec::with_capacity(pool_size),
        };
        let mut body = Vec::with_capacity(2048);
        let bots = bot_users();
        let bot_p = probability(mix.bot_share);
        for _ in 0..pool_size {
            body.clear();
            let is_bot = bot_p > 0.0 && rng.random_bool(bot_p);
            let user = if is_bot {
                &bots[rng.random_range(0..bots.len())]
            } else {
                population.sample(&mut rng)
            };
            write_body(&mut rng, user, mix, &mut body)?;
            pool.push(target, &body, Some(ID_PREFIX.len()), is_bot)?;
        }
        Ok(pool)
    }

    /// A pool of one request that sends `body` unchanged every time.
    pub fn fixed(target: &Target, body: &[u8]) -> Result<RequestPool, RequestError> {
        let mut pool = RequestPool {
            id_base: 0,
            bytes: Vec::new(),
            entries: Vec::with_capacity(1),
        };
        pool.push(target, body, None, false)?;
        Ok(pool)
    }

    fn push(
        &mut self,
        target: &Target,
        body: &[u8],
        id_in_body: Option<usize>,
        bot: bool,
    ) -> Result<(), RequestError> {
        let start = self.bytes.len();
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: rtb-load\r\nContent-Type: application/json\r\nx-openrtb-version: 2.6\r\nContent-Length: {}\r\n\r\n",
            target.path,
            target.host_header,
            body.len()
        );
        if start + head.len() + body.len() > POOL_BYTES_MAX {
            return Err(RequestError::PoolTooLarge {
                bytes_max: POOL_BYTES_MAX,
            });
        }
        self.bytes.extend_from_slice(head.as_bytes());
        self.bytes.extend_from_slice(body);
        self.entries.push(Entry {
            start,
            len: head.len() + body.len(),
            id_offset: id_in_body.map(|o| head.len() + o),
            body_offset: head.len(),
            bot,
        });
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Body of entry `index` as stored (id digits still zero).
    pub fn body(&self, index: usize) -> &[u8] {
        let e = self.entries[index % self.entries.len()];
        &self.bytes[e.start + e.body_offset..e.start + e.len]
    }

    /// Replaces `out` with the complete HTTP request number `request_no`: pool entry
    /// `request_no % len` with its id set to `request_no`. Reuses `out`'s capacity.
    pub fn write_request(&self, request_no: u64, out: &mut Vec<u8>) {
        let e = self.entries[(request_no % self.entries.len() as u64) as usize];
        out.clear();
        out.extend_from_slice(&self.bytes[e.start..e.start + e.len]);
        if let Some(offset) = e.id_offset {
            let id = request_no.wrapping_add(self.id_base);
            write_fixed_width(id, &mut out[offset..offset + ID_DIGITS]);
        }
    }

    /// Request ids become `id_base + request number` (so two runs never reuse an id).
    pub fn with_id_base(mut self, id_base: u64) -> RequestPool {
        self.id_base = id_base;
        self
    }

    /// Whether request number `request_no` comes from a bot client.
    pub fn is_bot(&self, request_no: u64) -> bool {
        self.entries[(request_no % self.entries.len() as u64) as usize].bot
    }

    /// Largest request in bytes (to size send buffers once).
    pub fn request_bytes_max(&self) -> usize {
        self.entries.iter().map(|e| e.len).max().unwrap_or(0)
    }
}

/// Writes `value` as zero-padded decimal filling `digits` exactly.
fn write_fixed_width(mut value: u64, digits: &mut [u8]) {
    for d in digits.iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sonic_rs::JsonValueTrait;

    fn target() -> Target {
        Target::parse("http://127.0.0.1:8080/openrtb2/auction").unwrap()
    }

    #[test]
    fn fixed_width_id_is_patched_per_request() {
        let pop = Population::synthesize(50, 1).unwrap();
        let pool = RequestPool::generated(&target(), &pop, &RequestMix::default(), 3, 9).unwrap();
        let mut out = Vec::new();
        pool.write_request(4, &mut out);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("POST /openrtb2/auction HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        let body_at = text.find("\r\n\r\n").unwrap() + 4;
        let body: sonic_rs::Value = sonic_rs::from_str(&text[body_at..]).unwrap();
        assert_eq!(body["id"].as_str(), Some("00000000000000000004"));
        let declared: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(declared, text.len() - body_at);
        pool.write_request(u64::MAX, &mut out);
        assert!(String::from_utf8_lossy(&out).contains(&format!("\"id\":\"{}\"", u64::MAX)));
    }

    #[test]
    fn fixed_body_is_sent_unchanged() {
        let pool = RequestPool::fixed(&target(), b"{\"id\":\"x\"}").unwrap();
        let mut out = Vec::new();
        pool.write_request(77, &mut out);
        assert!(out.ends_with(b"\r\n\r\n{\"id\":\"x\"}"));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn shares_shape_site_and_video_mix() {
        let pop = Population::synthesize(100, 2).unwrap();
        let all_site_video = RequestMix {
            site_share: 1.0,
            video_share: 1.0,
            tmax_ms: 80,
            bot_share: 0.0,
        };
        let pool = RequestPool::generated(&target(), &pop, &all_site_video, 20, 3).unwrap();
        for i in 0..pool.len() {
            let v: sonic_rs::Value = sonic_rs::from_slice(pool.body(i)).unwrap();
            assert!(v.get("site").is_some() && v.get("app").is_none());
            assert!(v["imp"][0].get("video").is_some() && v["imp"][0].get("banner").is_none());
            assert_eq!(v["tmax"].as_u64(), Some(80));
        }
        let all_app_banner = RequestMix {
            site_share: 0.0,
            video_share: 0.0,
            tmax_ms: 80,
            bot_share: 0.0,
        };
        let pool = RequestPool::generated(&target(), &pop, &all_app_banner, 20, 3).unwrap();
        for i in 0..pool.len() {
            let v: sonic_rs::Value = sonic_rs::from_slice(pool.body(i)).unwrap();
            assert!(v.get("app").is_some() && v.get("site").is_none());
            assert!(v["imp"][0].get("banner").is_some());
        }
    }

    #[test]
    fn bot_share_mixes_in_flagged_bot_clients() {
        let pop = Population::synthesize(100, 2).unwrap();
        let mix = RequestMix {
            bot_share: 0.25,
            ..RequestMix::default()
        };
        let pool = RequestPool::generated(&target(), &pop, &mix, 400, 7).unwrap();
        let bots: Vec<usize> = (0..pool.len()).filter(|&i| pool.is_bot(i as u64)).collect();
        assert!(
            (60..140).contains(&bots.len()),
            "{} bots of 400",
            bots.len()
        );
        for &i in &bots {
            let v: sonic_rs::Value = sonic_rs::from_slice(pool.body(i)).unwrap();
            assert!(v["user"]["id"].as_str().unwrap().starts_with("bot-"));
        }
        let none = RequestPool::generated(&target(), &pop, &RequestMix::default(), 100, 7).unwrap();
        assert!((0..100).all(|i| !none.is_bot(i)));
    }
}
