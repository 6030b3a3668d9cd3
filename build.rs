//! Tells the Slurm tests, at compile time, whether they were asked for
//! (`JOBFILE_TEST_SLURM=1`): without it they are reported as ignored.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(jobfile_slurm_tests)");
    println!("cargo::rerun-if-env-changed=JOBFILE_TEST_SLURM");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("JOBFILE_TEST_SLURM").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=jobfile_slurm_tests");
    }
}
