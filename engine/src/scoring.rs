//! Scoring: predicted click-through rate and eCPM for each candidate.
//!
//! Today's scorer is the seed's cold-start tier 4, the category CTR prior from the catalog; the GBDT
//! model replaces it as default in its own issue, behind the same function shape.
//! Owns: pCTR and eCPM arithmetic. Must not know: budgets or the auction's rules.

use crate::catalog::{CampaignEntry, Pricing};

/// Which source produced a pCTR (exported in metrics once several exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreSource {
    CategoryPrior,
}

/// pCTR of a campaign's ad for this request (tier 4: the category prior).
pub fn predict_ctr(campaign: &CampaignEntry) -> (f64, ScoreSource) {
    (campaign.ctr_prior, ScoreSource::CategoryPrior)
}

/// Expected value per thousand impressions, in micros: the bid for CPM, pCTR x CPC x 1000 for CPC.
pub fn ecpm_micros(pricing: &Pricing, pctr: f64) -> u64 {
    match *pricing {
        Pricing::Cpm { bid_cpm_micros } => bid_cpm_micros,
        Pricing::Cpc { bid_cpc_micros } => {
            debug_assert!((0.0..=1.0).contains(&pctr));
            let v = pctr * bid_cpc_micros as f64 * 1000.0;
            if v.is_finite() && v > 0.0 {
                v.min(u64::MAX as f64) as u64
            } else {
                0
            }
        }
    }
}

/// What one impression costs the campaign, in micros: eCPM / 1000, rounded up so the ledger never
/// records less than the price we announce.
pub fn cost_per_impression_micros(ecpm_micros: u64) -> u64 {
    ecpm_micros.div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_example_cpc_to_ecpm() {
        // Seed Part 6: $4.00 CPC at 15 % CTR is a $600 eCPM.
        let p = Pricing::Cpc {
            bid_cpc_micros: 4_000_000,
        };
        assert_eq!(ecpm_micros(&p, 0.15), 600_000_000);
        let m = Pricing::Cpm {
            bid_cpm_micros: 2_500_000,
        };
        assert_eq!(ecpm_micros(&m, 0.9), 2_500_000);
    }

    #[test]
    fn cost_rounds_up() {
        assert_eq!(cost_per_impression_micros(2_500_000), 2_500);
        assert_eq!(cost_per_impression_micros(1_001), 2);
        assert_eq!(cost_per_impression_micros(0), 0);
    }
}
