//! What the OpenRTB integration tests share: the public sample corpus in
//! `shared/data/openrtb/{requests,responses}` (never edited here) and paths inside the repository.

#![allow(dead_code)] // each test binary uses its own part

use std::path::PathBuf;

/// `relative` to the `net` crate's directory.
pub fn manifest_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The files of the shared corpus directory `kind` (`requests` or `responses`) as (file name,
/// bytes), sorted by name; at least 10 of them, or the corpus is missing.
pub fn corpus_files(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = manifest_path("../../shared/data/openrtb").join(kind);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus directory {} unreadable: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("corpus file readable"))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the shared corpus in {}, found {} files",
        dir.display(),
        files.len()
    );
    files
}
