//! `ledger reconcile`: the ledger against the client's log of served impressions
//! (`rtb-load --events`, format in [`crate::load::events`]).
//!
//! Only impressions the ledger can charge are compared: bids of our seat (`--seat`, default
//! `adcore`), not house ads, with a `cid`. Each is identified by the engine's idempotency key
//! (`engine::ledger::impression_key(request id, imp id)`), costs
//! `engine::scoring::cost_per_impression_micros(price)`, and belongs to the campaign-day the
//! catalog's time zone gives its timestamp.
//!
//! # "No committed spend lost", precisely
//!
//! An impression the client received is money the advertiser owes. The ledger has not lost it when
//! either
//! 1. a Spend record with its key exists, for the same campaign and cost (a different campaign or
//!    cost is an error), or
//! 2. its campaign-day has enough *unrecorded consumed* money to cover it: summed over that
//!    campaign-day's **closed** lots (reclaimed, or returned with nothing outstanding),
//!    `granted - returned - committed spend` per lot, i.e. budget the ledger durably counts as
//!    used (reclaimed after a crash, or reported spent in a closing return) that no Spend record
//!    accounts for. A crash between serving and the group commit loses the record but not the
//!    money: the allocator reclaims the whole lot as spent on restart. Lots still outstanding
//!    (a live or killed-and-not-restarted server) cover nothing: their unspent part is not
//!    spend. So run it on the ledger of a server that was restarted (and ideally stopped).
//!
//! Anything else — served money outside every Spend record and beyond the unrecorded consumed
//! money of its campaign-day — is *lost committed spend*: an error. Ledger spends that were
//! never served (the response was lost or timed out) are fine and only counted.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use engine::budget::calendar::Calendar;
use engine::catalog::Catalog;
use engine::ledger::impression_key;
use engine::scoring::cost_per_impression_micros;

use super::LedgerError;
use super::account::{Accounts, day_name};
use crate::load::events::ServedEvent;

/// Count and micros.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub micros: u64,
}

impl Tally {
    fn add(&mut self, micros: u64) {
        self.count += 1;
        self.micros += micros;
    }
}

/// Served-but-unrecorded money of one campaign-day and what covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unrecorded {
    pub campaign: u32,
    pub campaign_id: u32,
    pub day: i64,
    pub served: Tally,
    /// Unrecorded consumed money of the campaign-day's closed lots.
    pub cover_micros: u64,
    /// Budget of the campaign-day still outstanding (not yet reclaimed or returned).
    pub outstanding_micros: u64,
}

impl Unrecorded {
    pub fn covered(&self) -> bool {
        self.served.micros <= self.cover_micros
    }
}

#[derive(Debug, Clone, Default)]
pub struct ReconcileReport {
    /// Every event line read.
    pub events: u64,
    /// Events not charged by the ledger (other seats, house ads, no cid).
    pub not_charged: u64,
    /// Chargeable impressions served.
    pub served: Tally,
    /// Served and found in the ledger with the same campaign and cost.
    pub matched: Tally,
    /// Served, absent from the ledger, per campaign-day.
    pub unrecorded: Vec<Unrecorded>,
    /// Ledger spends no served event matches (fine: response lost).
    pub ledger_only: Tally,
    /// The same key served more than once.
    pub served_twice: u64,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// Builds the report. `seat` is the engine's `[auction] seat`.
pub fn reconcile(
    acc: &Accounts,
    events: &[ServedEvent],
    catalog: &Catalog,
    seat: &str,
) -> Result<ReconcileReport, LedgerError> {
    let calendar = calendar_of(catalog)?;
    let index: HashMap<u32, usize> = catalog
        .campaigns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.spec.id, i))
        .collect();
    let mut r = ReconcileReport {
        events: events.len() as u64,
        ..ReconcileReport::default()
    };
    if !acc.snapshots.is_empty() {
        r.warnings.push(format!(
            "{} compacted into a snapshot: spends before it are matched by key only (cost unknown)",
            acc.snapshots.join(", ")
        ));
    }
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let mut missing: BTreeMap<(u32, i64), Tally> = BTreeMap::new();
    for (line, ev) in events.iter().enumerate() {
        let Some(cid) = chargeable(ev, seat) else {
            r.not_charged += 1;
            continue;
        };
        let Some(&campaign) = cid.parse::<u32>().ok().and_then(|id| index.get(&id)) else {
            r.problems.push(format!(
                "event {}: campaign id {cid:?} is not in the catalog",
                line + 1
            ));
            continue;
        };
        let cost = cost_per_impression_micros(ev.price_cpm_micros().unwrap_or(0));
        let key = impression_key(&ev.request_id, &ev.imp_id);
        r.served.add(cost);
        let times = seen.entry(key).or_insert(0);
        *times += 1;
        if *times > 1 {
            r.served_twice += 1;
        }
        match acc.spends.get(&key) {
            Some(s) if *times == 1 => {
                if !s.from_snapshot && (s.campaign as usize != campaign || s.cost != cost) {
                    r.problems.push(format!(
                        "request {:?} imp {:?}: served as campaign id {cid} for {cost} micros, \
                         ledger {} seq {} charged campaign #{} {} micros",
                        ev.request_id, ev.imp_id, s.file, s.seq, s.campaign, s.cost
                    ));
                }
                r.matched.add(cost);
            }
            _ => {
                let day = calendar.period(campaign, ev.ts_ms).day;
                missing.entry((campaign as u32, day)).or_default().add(cost);
            }
        }
    }
    for (key, s) in &acc.spends {
        if !seen.contains_key(key) {
            r.ledger_only.add(s.cost);
        }
    }
    for ((campaign, day), served) in missing {
        let u = Unrecorded {
            campaign,
            campaign_id: catalog.campaigns[campaign as usize].spec.id,
            day,
            served,
            cover_micros: acc.unrecorded(campaign, day),
            outstanding_micros: acc.outstanding(campaign, day),
        };
        if !u.covered() {
            r.problems.push(format!(
                "lost committed spend: campaign id {} day {}: {} impressions worth {} micros were \
                 served but have no Spend record, and the ledger counts only {} micros of that \
                 campaign-day as consumed without a record{}",
                u.campaign_id,
                day_name(day),
                served.count,
                served.micros,
                u.cover_micros,
                if u.outstanding_micros > 0 {
                    format!(
                        " ({} micros still outstanding: restart the server so it reclaims them)",
                        u.outstanding_micros
                    )
                } else {
                    String::new()
                }
            ));
        }
        r.unrecorded.push(u);
    }
    Ok(r)
}

/// The campaign id of an event the ledger charges (our seat, not a house ad, with a cid).
fn chargeable<'a>(ev: &'a ServedEvent, seat: &str) -> Option<&'a str> {
    if ev.house || ev.seat.as_deref() != Some(seat) {
        return None;
    }
    ev.cid.as_deref()
}

fn calendar_of(catalog: &Catalog) -> Result<Calendar, LedgerError> {
    let zone = |adv: u32| {
        catalog
            .advertisers
            .iter()
            .find(|a| a.id == adv)
            .map_or("UTC", |a| a.timezone.as_str())
    };
    Calendar::from_names(
        catalog
            .campaigns
            .iter()
            .map(|c| (c.spec.id, zone(c.spec.advertiser_id))),
    )
    .map_err(|e| LedgerError::Catalog(e.to_string()))
}

impl ReconcileReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let t = |t: &Tally| format!("{} impressions, {} micros", t.count, t.micros);
        let _ = writeln!(s, "events read:              {}", self.events);
        let _ = writeln!(s, "not charged (other seat, house): {}", self.not_charged);
        let _ = writeln!(s, "served (chargeable):      {}", t(&self.served));
        let _ = writeln!(s, "matched in the ledger:    {}", t(&self.matched));
        let mut unrec = Tally::default();
        for u in &self.unrecorded {
            unrec.count += u.served.count;
            unrec.micros += u.served.micros;
        }
        let _ = writeln!(s, "served, no Spend record:  {}", t(&unrec));
        for u in &self.unrecorded {
            let _ = writeln!(
                s,
                "  campaign id {} day {}: {} served unrecorded vs {} micros unrecorded consumed: {}",
                u.campaign_id,
                day_name(u.day),
                t(&u.served),
                u.cover_micros,
                if u.covered() { "covered" } else { "LOST" }
            );
        }
        let _ = writeln!(
            s,
            "ledger spends never served (response lost): {}",
            t(&self.ledger_only)
        );
        if self.served_twice > 0 {
            let _ = writeln!(s, "keys served more than once: {}", self.served_twice);
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        for p in &self.problems {
            let _ = writeln!(s, "error: {p}");
        }
        let _ = writeln!(
            s,
            "{}",
            if self.ok() {
                "no committed spend lost"
            } else {
                "FAILED"
            }
        );
        s
    }
}
