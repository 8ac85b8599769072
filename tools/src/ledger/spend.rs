//! `ledger spend`: per campaign and day, where the budget went, against the catalog's budgets.
//!
//! A campaign-day is **over budget** when either its committed spend (Spend records) or what the
//! budget source counts as used (`granted - returned`, which includes reclaimed lots counted as
//! spent after a crash) exceeds `daily budget + bound`, `bound = daily budget * bound_ppm / 1e6`.
//! The same test runs over every day of a campaign against its lifetime budget.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use engine::budget::source::mul_ppm;
use engine::catalog::Catalog;

use super::account::{Accounts, EARLIER_DAY, Figures, day_name};

/// Default inaccuracy bound (1 %, `[budget] bound_ppm`).
pub const BOUND_PPM_DEFAULT: u64 = 10_000;

/// Budgets of one campaign (by ledger index = catalog index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignBudget {
    pub id: u32,
    pub daily_micros: u64,
    pub lifetime_micros: u64,
}

/// Campaign budgets indexed like the catalog (the ledger's campaign numbers).
pub fn budgets_of(catalog: &Catalog) -> Vec<CampaignBudget> {
    catalog
        .campaigns
        .iter()
        .map(|c| CampaignBudget {
            id: c.spec.id,
            daily_micros: c.spec.budget_daily_micros,
            lifetime_micros: c.spec.budget_lifetime_micros,
        })
        .collect()
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendRow {
    /// Ledger campaign number (catalog index).
    pub campaign: u32,
    /// Catalog campaign id, when a catalog was given.
    pub campaign_id: Option<u32>,
    /// `None`: the lifetime row of the campaign.
    pub day: Option<i64>,
    pub figures: Figures,
    pub budget: Option<u64>,
    /// `budget + bound`.
    pub limit: Option<u64>,
    pub over: bool,
}

/// The whole report.
#[derive(Debug, Clone, Default)]
pub struct SpendReport {
    pub rows: Vec<SpendRow>,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    pub bound_ppm: u64,
}

impl SpendReport {
    pub fn build(acc: &Accounts, budgets: Option<&[CampaignBudget]>, bound_ppm: u64) -> Self {
        let mut r = SpendReport {
            problems: acc.problems.clone(),
            bound_ppm,
            ..SpendReport::default()
        };
        if !acc.snapshots.is_empty() {
            r.warnings.push(format!(
                "{} compacted into a snapshot: figures before it are the snapshot's totals per \
                 campaign-day (spend before its day shows as `earlier`); per-lot checks skipped",
                acc.snapshots.join(", ")
            ));
        }
        if budgets.is_none() {
            r.warnings
                .push("no --catalog: budgets unknown, over-budget not checked".into());
        }
        let mut life: BTreeMap<u32, Figures> = BTreeMap::new();
        for ((c, d), f) in acc.days() {
            let b = budgets.and_then(|b| b.get(c as usize));
            if budgets.is_some() && b.is_none() {
                r.problems.push(format!(
                    "campaign {c} is in the ledger but not in the catalog"
                ));
            }
            // Spend a snapshot only knows as "before its day" spans days: no daily budget.
            let daily = b.map(|b| b.daily_micros).filter(|_| d != EARLIER_DAY);
            r.push(c, Some(d), f, b, daily);
            life.entry(c).or_default().add(&f);
        }
        for (c, f) in life {
            let b = budgets.and_then(|b| b.get(c as usize));
            r.push(c, None, f, b, b.map(|b| b.lifetime_micros));
        }
        r
    }

    fn push(
        &mut self,
        campaign: u32,
        day: Option<i64>,
        figures: Figures,
        b: Option<&CampaignBudget>,
        budget: Option<u64>,
    ) {
        let limit = budget.map(|v| v + mul_ppm(v, self.bound_ppm));
        let over = limit.is_some_and(|l| figures.spent.max(figures.consumed()) > l);
        let row = SpendRow {
            campaign,
            campaign_id: b.map(|b| b.id),
            day,
            figures,
            budget,
            limit,
            over,
        };
        if over {
            self.problems.push(format!(
                "campaign {}{} over budget: spent {} / consumed {} > budget {} + bound = {}",
                row.label(),
                day.map_or(" (lifetime)".to_string(), |d| format!(
                    " day {}",
                    day_name(d)
                )),
                figures.spent,
                figures.consumed(),
                budget.unwrap_or(0),
                limit.unwrap_or(0)
            ));
        }
        self.rows.push(row);
    }

    /// True when nothing is over budget + bound and the records are consistent.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<10} {:<10} {:>12} {:>12} {:>12} {:>12} {:>12} {:>8} {:>12} {:>12} {:>6}",
            "campaign",
            "day",
            "granted",
            "returned",
            "reclaimed",
            "spent",
            "outstanding",
            "imps",
            "budget",
            "limit",
            "over"
        );
        for r in &self.rows {
            let f = &r.figures;
            let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
            let _ = writeln!(
                s,
                "{:<10} {:<10} {:>12} {:>12} {:>12} {:>12} {:>12} {:>8} {:>12} {:>12} {:>6}",
                r.label(),
                r.day.map_or("lifetime".to_string(), day_name),
                f.granted,
                f.returned,
                f.reclaimed,
                f.spent,
                f.outstanding(),
                f.impressions,
                opt(r.budget),
                opt(r.limit),
                if r.over { "OVER" } else { "no" }
            );
        }
        let _ = writeln!(
            s,
            "amounts in micros; limit = budget + {} ppm; spent = committed Spend records",
            self.bound_ppm
        );
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        for p in &self.problems {
            let _ = writeln!(s, "error: {p}");
        }
        s
    }
}

impl SpendRow {
    /// `id 12` with a catalog, else `#3` (ledger campaign number).
    pub fn label(&self) -> String {
        match self.campaign_id {
            Some(id) => format!("id {id}"),
            None => format!("#{}", self.campaign),
        }
    }
}
