//! The outbound OpenRTB 2.6 BidRequest a DSP receives, built from the inbound one.
//!
//! Once per request ([`Template::new`]): every impression's floor raised to our reserve
//! (`bidfloor = max(inbound floor, rtb reserve)`, in USD; floors in another currency are left as
//! sent, since we do not convert), first-price auction (`at = 1`), `user.buyeruid` removed (it
//! belongs to one buyer), `device.ifa` removed under limit-ad-tracking. Per DSP
//! ([`Template::write_for`]): `tmax` = ms left until that DSP's deadline, `user.id` replaced by a
//! keyed hash of the user id so DSPs cannot join ids across each other; written into a buffer.
//! Headers (`x-openrtb-version: 2.6`, content type) are in [`HEADERS`].
//!
//! Owns: the outbound shape. Must not know: I/O, selection.

use std::hash::{BuildHasher, Hasher};

use compact_str::CompactString;
use net::openrtb::BidRequest;

/// Headers of every outbound bid request.
pub const HEADERS: [(&str, &[u8]); 2] = [
    ("content-type", b"application/json"),
    ("x-openrtb-version", b"2.6"),
];

/// The inbound request, adjusted once for all DSPs.
pub struct Template {
    req: BidRequest,
    user_id: Option<CompactString>,
}

impl Template {
    pub fn new(inbound: &BidRequest, reserve_cpm_micros: u64) -> Template {
        let mut req = inbound.clone();
        for imp in &mut req.imp {
            if imp.floor_currency() == "USD" {
                let ours = reserve_cpm_micros as f64 / 1_000_000.0;
                if imp.bidfloor < ours {
                    imp.bidfloor = ours;
                    imp.bidfloorcur = Some("USD".into());
                }
            }
        }
        req.at = Some(1);
        let mut user_id = None;
        if let Some(u) = req.user.as_mut() {
            user_id = u.id.take().filter(|s| !s.is_empty());
            u.buyeruid = None;
        }
        if let Some(d) = req.device.as_mut()
            && d.lmt == Some(1)
        {
            d.ifa = None;
        }
        Template { req, user_id }
    }

    /// Floor of impression `i` as sent to DSPs, CPM micros (our reserve included).
    pub fn floor_micros(&self, i: usize) -> u64 {
        crate::intake::floor_to_micros(self.req.imp[i].bidfloor)
    }

    pub fn request(&self) -> &BidRequest {
        &self.req
    }

    /// Writes the request for `dsp_id` with `tmax_ms` into `out` (cleared first).
    pub fn write_for(&mut self, dsp_id: &str, tmax_ms: u64, out: &mut Vec<u8>) {
        out.clear();
        self.req.tmax = Some(tmax_ms);
        if let (Some(u), Some(id)) = (self.req.user.as_mut(), self.user_id.as_deref()) {
            let out = u.id.get_or_insert_with(CompactString::default);
            out.clear();
            write_hashed_user_id(dsp_id, id, out);
        }
        net::openrtb::write_bid_request(&self.req, out);
    }
}

/// Keyed, per-DSP hash of a user id: 16 hex digits.
pub fn hashed_user_id(dsp_id: &str, user_id: &str) -> String {
    let mut out = String::with_capacity(16);
    write_hashed_user_id(dsp_id, user_id, &mut out);
    out
}

/// [`hashed_user_id`] appended to `out` (reuses its allocation).
pub fn write_hashed_user_id(dsp_id: &str, user_id: &str, out: &mut impl std::fmt::Write) {
    let mut h = ahash::RandomState::with_seeds(
        0x9e37_79b9_7f4a_7c15,
        0xbf58_476d_1ce4_e5b9,
        0x94d0_49bb_1331_11eb,
        0x2545_f491_4f6c_dd1d,
    )
    .build_hasher();
    h.write(dsp_id.as_bytes());
    h.write_u8(0);
    h.write(user_id.as_bytes());
    let _ = write!(out, "{:016x}", h.finish());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_request_has_floors_tmax_and_hashed_ids() {
        let inbound = net::openrtb::parse_bid_request(
            br#"{"id":"r","imp":[{"id":"1","bidfloor":0.001,"banner":{"w":1,"h":1}},
                {"id":"2","bidfloor":3,"banner":{"w":1,"h":1}},
                {"id":"3","bidfloor":0.001,"bidfloorcur":"EUR","banner":{"w":1,"h":1}}],
                "user":{"id":"u-1","buyeruid":"b"},"device":{"lmt":1,"ifa":"x"},"tmax":500}"#,
        )
        .unwrap();
        let mut t = Template::new(&inbound, 10_000);
        assert_eq!(t.floor_micros(0), 10_000);
        assert_eq!(t.floor_micros(1), 3_000_000);
        assert_eq!(t.floor_micros(2), 1_000);
        let mut out = Vec::new();
        t.write_for("dsp-a", 42, &mut out);
        let a = net::openrtb::parse_bid_request(&out).unwrap();
        assert_eq!(a.tmax, Some(42));
        assert_eq!(a.at, Some(1));
        let uid_a = a.user.as_ref().unwrap().id.clone().unwrap();
        assert_eq!(uid_a, hashed_user_id("dsp-a", "u-1"));
        assert_ne!(uid_a, "u-1");
        assert_eq!(a.user.as_ref().unwrap().buyeruid, None);
        assert_eq!(a.device.as_ref().unwrap().ifa, None);
        t.write_for("dsp-b", 17, &mut out);
        let b = net::openrtb::parse_bid_request(&out).unwrap();
        assert_eq!(b.tmax, Some(17));
        assert_ne!(b.user.unwrap().id.unwrap(), uid_a);
        assert_eq!(inbound.user.as_ref().unwrap().id.as_deref(), Some("u-1"));
    }
}
