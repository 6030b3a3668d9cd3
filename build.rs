//! Tells the tests that need something outside the project, at compile
//! time, whether they were asked for: the Slurm tests
//! (`JOBFILE_TEST_SLURM=1`) and the report's browser tests
//! (`JOBFILE_TEST_BROWSER=1`, in `tests/report_browser.rs`). Without the
//! variable they are reported as ignored; with it they run, and fail when
//! what they need is unusable.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for (var, cfg) in [
        ("JOBFILE_TEST_SLURM", "jobfile_slurm_tests"),
        ("JOBFILE_TEST_BROWSER", "jobfile_browser_tests"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var(var).as_deref() == Ok("1") {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
