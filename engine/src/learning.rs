//! One shard's model-side state: the serving model's `Arc`, the shard's user profiles, its
//! campaign counters and its scorer; plus the click notice and the off-thread model loader.
//!
//! The model is swapped between requests (`swap_model`, driven by `invoke_on_all`); an auction
//! borrows the current model for its whole (non-yielding) run, so requests in flight finish on
//! the model they started with. Impressions are counted here when we win; clicks when the
//! owner shard receives `/notice/click`.
//!
//! Owns: per-shard learning state and the reload procedure. Must not know: HTTP routing, the
//! mesh, or the auction's rules.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auction::AuctionResult;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::metrics::{ShardMetrics, bump};
use crate::model_store::{self, ServingModel};
use crate::profile::{Aggregates, ProfileStore, UsersFile};
use crate::scoring::{CampaignStats, ProfileSource, Scorer, ScoringInputs, ScoringRun};

/// A click notice, parsed: `GET /notice/click?user=<user id>&campaign=<campaign id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Click {
    pub user_key: u64,
    /// Index into `Catalog::campaigns`.
    pub campaign: usize,
}

/// The shard's learning state.
pub struct Learning {
    model: RefCell<Arc<ServingModel>>,
    profiles: RefCell<ProfileStore>,
    aggregates: Arc<Aggregates>,
    campaigns: RefCell<CampaignStats>,
    scorer: RefCell<Scorer>,
    shards: usize,
    /// A reload started from this shard is running.
    pub reloading: Cell<bool>,
}

impl Learning {
    pub fn new(
        cfg: &Config,
        catalog: &Catalog,
        model: Arc<ServingModel>,
        users: Option<&UsersFile>,
        shard: usize,
        shards: usize,
    ) -> Learning {
        let profiles =
            ProfileStore::for_shard(users, shard, shards, cfg.profiles.users_max_per_shard);
        if profiles.dropped_at_load > 0 {
            tracing::warn!(
                shard,
                dropped = profiles.dropped_at_load,
                bound = cfg.profiles.users_max_per_shard,
                "profile store full: users not loaded"
            );
        }
        Learning {
            model: RefCell::new(model),
            profiles: RefCell::new(profiles),
            aggregates: Arc::new(users.map(|u| u.aggregates.clone()).unwrap_or_default()),
            campaigns: RefCell::new(CampaignStats::new(catalog)),
            scorer: RefCell::new(Scorer::new(cfg.model.seed.wrapping_add(shard as u64))),
            shards,
            reloading: Cell::new(false),
        }
    }

    /// Runs `f` (the auction) with a scoring run for `user_key`, then counts the wins. The
    /// profile lookup and tier choice happen when the auction first scores or explores (a
    /// request without candidates does neither) and are timed as the `profile` stage; the user's
    /// features are assembled by the first model prediction, in the `scoring` stage.
    /// `prior_only` (a degradation level) scores with the category prior instead of the model.
    pub fn with_scoring<R>(
        &self,
        cfg: &Config,
        user_key: u64,
        metrics: &ShardMetrics,
        prior_only: bool,
        f: impl FnOnce(&mut ScoringRun<'_>) -> R,
    ) -> R {
        let model = self.model.borrow();
        let profiles = self.profiles.borrow();
        let campaigns = self.campaigns.borrow();
        let mut scorer = self.scorer.borrow_mut();
        let inputs = ScoringInputs {
            model: (!prior_only).then_some(&model.model),
            cfg: &cfg.model,
            profile: ProfileSource::Lookup(&profiles, user_key),
            aggregates: &self.aggregates,
            campaigns: &campaigns,
            shards: self.shards,
        };
        let mut run = ScoringRun::new(inputs, &mut scorer, &metrics.ml);
        let result = f(&mut run);
        if let Some(took) = run.profile_lookup_took() {
            metrics.record(crate::metrics::Stage::Profile, took);
        }
        result
    }

    /// Counts the paid impressions of an auction for the campaigns and the user.
    pub fn record_wins(&self, user_key: u64, result: &AuctionResult, metrics: &ShardMetrics) {
        let mut campaigns = self.campaigns.borrow_mut();
        let mut profiles = self.profiles.borrow_mut();
        for w in result.wins.iter().filter(|w| !w.house) {
            campaigns.imps[w.campaign] += 1;
            let category = campaigns.category[w.campaign];
            if profiles.record_impression(user_key, category) {
                bump(&metrics.ml.impressions_profiled, 1);
            }
        }
    }

    /// Counts a click on the owner shard.
    pub fn record_click(&self, click: Click, metrics: &ShardMetrics) {
        let mut campaigns = self.campaigns.borrow_mut();
        campaigns.clicks[click.campaign] += 1;
        let category = campaigns.category[click.campaign];
        bump(&metrics.ml.clicks, 1);
        if !self
            .profiles
            .borrow_mut()
            .record_click(click.user_key, category)
        {
            bump(&metrics.ml.clicks_unknown_user, 1);
        }
    }

    /// Resolves a click query against this shard's campaign index.
    pub fn parse_click(&self, query: &str) -> Result<Click, String> {
        let mut user = None;
        let mut campaign = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("user", v)) if !v.is_empty() => user = Some(v),
                Some(("campaign", v)) => campaign = Some(v),
                _ => {}
            }
        }
        let user = user.ok_or("missing query parameter user")?;
        let id = campaign.ok_or("missing query parameter campaign")?;
        let id: u32 = id
            .parse()
            .map_err(|_| format!("campaign {id:?} is not a campaign id"))?;
        let campaign = self
            .campaigns
            .borrow()
            .index_of(id)
            .ok_or_else(|| format!("campaign {id} is not in the catalog"))?;
        Ok(Click {
            user_key: crate::intake::user_key_of_id(user),
            campaign,
        })
    }

    /// Makes `model` the one this shard serves from its next request on.
    pub fn swap_model(&self, model: Arc<ServingModel>) {
        *self.model.borrow_mut() = model;
    }

    pub fn model_version(&self) -> String {
        self.model.borrow().version.clone()
    }

    pub fn profiles_len(&self) -> usize {
        self.profiles.borrow().len()
    }

    pub fn profiles_dropped(&self) -> u64 {
        self.profiles.borrow().dropped_at_load
    }
}

/// Clears a shard's "reload running" flag when dropped.
pub struct ReloadGuard<'a>(pub &'a Cell<bool>);

impl Drop for ReloadGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// Loads and checks a model on a fresh OS thread (never on a shard), waiting for it with timer
/// polls so the shard keeps serving. `path` empty = the embedded demo model.
pub async fn load_off_shard(path: PathBuf, timeout: Duration) -> Result<Arc<ServingModel>, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let shown = path.display().to_string();
    std::thread::Builder::new()
        .name("model-load".into())
        .spawn(move || {
            let _ = tx.send(model_store::load(&path).map_err(|e| e.to_string()));
        })
        .map_err(|e| format!("cannot start the loader thread: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        match rx.try_recv() {
            Ok(r) => return r.map(Arc::new),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                return Err(format!("{shown}: the loader thread died"));
            }
            Err(std::sync::mpsc::TryRecvError::Empty) if Instant::now() >= deadline => {
                return Err(format!("{shown}: not loaded within {timeout:?}"));
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                monoio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// The path a reload uses: the request body when it names one, else the configured path.
pub fn reload_path(body: &[u8], configured: &Path) -> Result<PathBuf, String> {
    let text = std::str::from_utf8(body)
        .map_err(|_| "body must be a UTF-8 file path (or empty)".to_string())?
        .trim();
    if text.is_empty() {
        Ok(configured.to_path_buf())
    } else {
        Ok(PathBuf::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learning() -> Learning {
        let catalog = Catalog::from_slice(
            "t",
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/catalog.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let model = Arc::new(model_store::load(Path::new("")).unwrap());
        Learning::new(&Config::default(), &catalog, model, None, 0, 1)
    }

    #[test]
    fn click_queries_are_checked() {
        let l = learning();
        let c = l.parse_click("user=u-1&campaign=1").unwrap();
        assert_eq!(c.user_key, crate::intake::user_key_of_id("u-1"));
        assert_eq!(c.campaign, 0);
        assert_eq!(
            l.parse_click("campaign=1").unwrap_err(),
            "missing query parameter user"
        );
        assert_eq!(
            l.parse_click("user=a&campaign=x").unwrap_err(),
            "campaign \"x\" is not a campaign id"
        );
        assert_eq!(
            l.parse_click("user=a&campaign=999999").unwrap_err(),
            "campaign 999999 is not in the catalog"
        );
        let m = ShardMetrics::default();
        l.record_click(c, &m);
        assert_eq!(l.campaigns.borrow().clicks[0], 1);
        assert_eq!(m.ml.clicks_unknown_user.get(), 1);
    }

    #[test]
    fn reload_path_defaults_to_the_configured_one() {
        assert_eq!(
            reload_path(b"", Path::new("a.txt")).unwrap(),
            PathBuf::from("a.txt")
        );
        assert_eq!(
            reload_path(b" /m/b.txt\n", Path::new("a.txt")).unwrap(),
            PathBuf::from("/m/b.txt")
        );
        assert!(reload_path(&[0xff], Path::new("a")).is_err());
    }
}
