//! Switches the browser tests on: with `JOBFILE_TEST_BROWSER=1` in the
//! environment of the build, `cfg(jobfile_browser_tests)` is set and the tests in
//! `tests/report_browser.rs` run (and fail when no browser works); without
//! it, `cargo test` lists them as ignored.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(jobfile_browser_tests)");
    println!("cargo::rerun-if-env-changed=JOBFILE_TEST_BROWSER");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("JOBFILE_TEST_BROWSER").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=jobfile_browser_tests");
    }
}
