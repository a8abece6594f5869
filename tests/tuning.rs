//! The files of `tuning/` stay usable: the config profiles pass `sluice check-config`, and the
//! host audit script `tuning/check` runs on this machine (whatever it finds) and prints
//! well-formed output that covers every knob of `tuning/sysctl.conf`.
//!
//! Needs `python3` on the PATH (the script's interpreter); nothing else, no network.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn check_script(args: &[&str]) -> Output {
    let script = repo().join("tuning/check");
    Command::new(&script)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()))
}

#[test]
fn profiles_pass_check_config() {
    let dir = repo().join("tuning/profiles");
    let mut profiles: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    profiles.sort();
    let names: Vec<_> = profiles
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    for want in ["latency.toml", "throughput.toml"] {
        assert!(
            names.iter().any(|n| n == want),
            "missing profile {want}: {names:?}"
        );
    }
    for profile in &profiles {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("check-config")
            .arg(profile)
            .output()
            .unwrap_or_else(|e| panic!("cannot run sluice: {e}"));
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("sluice check-config {}", profile.display()), &out)
        );
    }
}

/// The uncommented keys of `tuning/sysctl.conf`.
fn sysctl_conf_keys(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .map(|l| {
            let (key, value) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: not `key = value`: {l:?}", path.display()));
            assert!(
                !value.trim().is_empty(),
                "{}: no value: {l:?}",
                path.display()
            );
            key.trim().to_owned()
        })
        .collect()
}

#[test]
fn check_script_tsv_is_well_formed() {
    let out = check_script(&["--format", "tsv"]);
    assert!(
        out.status.success(),
        "{}",
        describe("tuning/check --format tsv", &out)
    );
    let text = String::from_utf8(out.stdout.clone()).expect("tuning/check output is UTF-8");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("knob\tcurrent\trecommended\tstatus\twhy"),
        "{}",
        describe("header", &out)
    );
    let mut knobs = BTreeSet::new();
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            fields.len(),
            5,
            "line {}: want 5 tab-separated fields: {line:?}",
            i + 2
        );
        assert!(
            ["ok", "warn", "unknown"].contains(&fields[3]),
            "line {}: status {:?} is not ok, warn or unknown",
            i + 2,
            fields[3]
        );
        for (name, value) in ["knob", "current", "recommended", "status", "why"]
            .iter()
            .zip(&fields)
        {
            assert!(
                !value.trim().is_empty(),
                "line {}: empty {name}: {line:?}",
                i + 2
            );
        }
        assert!(
            knobs.insert(fields[0].to_owned()),
            "knob {} listed twice",
            fields[0]
        );
    }

    let mut want: Vec<String> = [
        "kernel.version",
        "io_uring.available",
        "RLIMIT_MEMLOCK",
        "RLIMIT_NOFILE.soft",
        "RLIMIT_NOFILE.hard",
        "cpu.count",
        "cpu.governor",
        "thp.enabled",
        "thp.defrag",
        "net.core.somaxconn",
        "vm.swappiness",
        "fs.file-max",
    ]
    .map(String::from)
    .to_vec();
    want.extend(sysctl_conf_keys(&repo().join("tuning/sysctl.conf")));
    for knob in &want {
        assert!(
            knobs.contains(knob),
            "tuning/check does not audit {knob} (audits: {knobs:?})"
        );
    }
}

#[test]
fn check_script_formats_and_usage() {
    // JSON: one array of objects, one per knob, in the same order as the TSV rows.
    let json = check_script(&["--format", "json"]);
    assert!(
        json.status.success(),
        "{}",
        describe("tuning/check --format json", &json)
    );
    let text = String::from_utf8_lossy(&json.stdout);
    let trimmed = text.trim();
    assert!(
        trimmed.starts_with('[') && trimmed.ends_with(']'),
        "not a JSON array: {text}"
    );
    for field in [
        "\"knob\"",
        "\"current\"",
        "\"recommended\"",
        "\"status\"",
        "\"why\"",
    ] {
        assert!(text.contains(field), "JSON output lacks {field}: {text}");
    }
    let tsv = check_script(&["--format", "tsv"]);
    let rows = String::from_utf8_lossy(&tsv.stdout).lines().count() - 1;
    assert_eq!(
        text.matches("\"knob\":").count(),
        rows,
        "JSON and TSV list different numbers of knobs"
    );

    // Table, for people: ends with a summary line.
    let table = check_script(&[]);
    assert!(
        table.status.success(),
        "{}",
        describe("tuning/check", &table)
    );
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("RLIMIT_MEMLOCK") && text.contains(" ok, "),
        "{text}"
    );

    // Misuse exits 2 with usage; --help exits 0.
    let bad = check_script(&["--no-such-flag"]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe("bad flag", &bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("usage"),
        "{}",
        describe("bad flag", &bad)
    );
    let bad = check_script(&["--format", "yaml"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        describe("bad format", &bad)
    );
    let help = check_script(&["--help"]);
    assert!(help.status.success(), "{}", describe("--help", &help));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--format"));
}
