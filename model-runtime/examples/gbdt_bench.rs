//! Single-thread scoring benchmark (not a test): `cargo run --release -p model-runtime
//! --example gbdt_bench -- MODEL ROWS_CSV ROW_COUNT`. Reads the CSV (header = feature names,
//! empty = NaN), tiles it to ROW_COUNT rows and prints, per batch size, the best of several
//! passes as `batch=N ns_per_row=X ns_per_tree_row=Y checksum=Z`, after a `kernel=K` line.
//! Time is this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so other processes on a shared
//! machine distort it less.

use model_runtime::{Model, Scratch};

const PASSES: usize = 11;

fn thread_cpu_ns() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime");
    now.tv_sec as f64 * 1e9 + now.tv_nsec as f64
}

fn load_rows(model: &Model, path: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(path).expect("rows csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let columns: Vec<usize> = model
        .feature_names()
        .iter()
        .map(|f| header.iter().position(|h| h == f).expect("feature column"))
        .collect();
    let mut rows = Vec::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        for &c in &columns {
            rows.push(cells[c].parse().unwrap_or(f64::NAN));
        }
    }
    rows
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (model_path, rows_path) = (&args[1], &args[2]);
    let row_count: usize = args[3].parse().expect("row count");
    let model = Model::load(model_path).expect("model");
    let width = model.num_features();
    let base = load_rows(&model, rows_path);
    let rows: Vec<f64> = base
        .iter()
        .copied()
        .cycle()
        .take(row_count * width)
        .collect();
    let trees = model.info().trees as f64;
    println!("kernel={}", model.info().kernel);
    let mut scratch = Scratch::new();
    let mut out = vec![0.0; row_count];
    let batches = [1usize, 10, 100, 1000, row_count];
    // Passes go round-robin over the batch sizes, so a burst of load on the shared machine
    // hits one pass of each size rather than every pass of one size.
    let mut best = [f64::INFINITY; 5];
    let mut checksums = [0.0; 5];
    for _ in 0..PASSES {
        for (i, &batch) in batches.iter().enumerate() {
            let start = thread_cpu_ns();
            for (chunk, chunk_out) in rows.chunks(batch * width).zip(out.chunks_mut(batch)) {
                model
                    .predict_raw_batch(chunk, width, &mut scratch, chunk_out)
                    .expect("score");
            }
            best[i] = best[i].min((thread_cpu_ns() - start) / row_count as f64);
            checksums[i] = out.iter().sum();
        }
    }
    for ((batch, best), checksum) in batches.iter().zip(best).zip(checksums) {
        println!(
            "batch={batch} ns_per_row={best:.1} ns_per_tree_row={:.2} checksum={checksum:.6}",
            best / trees
        );
    }
}
