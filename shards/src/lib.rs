//! `shards`: the thread-per-core substrate. Knows nothing of ads.
