//! `aihunt rules list | validate | test`, and the rule loading that `scan` shares: embedded
//! pack plus `--rules` folders, with a one-line explanation for every rejected rule.

use std::io::Write;

use anyhow::{bail, Result};
use serde_json::json;

use crate::app::Outcome;
use crate::cli::{RuleArgs, RulesCommand};
use crate::report::terminal;
use crate::rules::load::{self, RuleError, RuleSource};
use crate::rules::{validate, RuleSet, Severity};

/// Loads the rules a command asked for. Errors are printed; unless `--skip-invalid-rules`,
/// any invalid rule stops the command, and an empty rule set always does.
pub fn load_rules(args: &RuleArgs, quiet: bool) -> Result<RuleSet> {
    let (mut set, errors, files) = load_all(args);
    for e in &errors {
        crate::diag!("aihunt: rule error: {}", terminal::escape(&e.to_string()));
    }
    if !errors.is_empty() && !args.skip_invalid_rules {
        bail!("{} rule error(s) in {} rule file(s); fix them or pass --skip-invalid-rules", errors.len(), files);
    }
    let min = args.min_severity.as_deref().and_then(Severity::parse);
    for id in load::select(&mut set, &args.only, &args.exclude, min) {
        crate::diag!("aihunt: warning: no rule has the id {}", terminal::escape(&id));
    }
    if set.rules.is_empty() && set.behaviors.is_empty() {
        bail!("no rules to run (check --rules, --rule, --exclude-rule, --min-severity and --no-default-rules)");
    }
    if !quiet {
        let rejected = if errors.is_empty() { String::new() } else { format!(", {} rejected", errors.len()) };
        crate::diag!("aihunt: {} rules and {} behaviour rules loaded from {} file(s){}", set.rules.len(), set.behaviors.len(), files, rejected);
    }
    Ok(set)
}

fn load_all(args: &RuleArgs) -> (RuleSet, Vec<RuleError>, usize) {
    let mut sources: Vec<RuleSource> = if args.no_default_rules { Vec::new() } else { load::embedded_sources() };
    let mut errors = Vec::new();
    for dir in &args.rule_dirs {
        match load::path_sources(dir) {
            Ok(s) => sources.extend(s),
            Err(e) => errors.push(e),
        }
    }
    let (set, mut compile_errors) = load::compile(&sources);
    errors.append(&mut compile_errors);
    (set, errors, sources.len())
}

pub fn run(cmd: RulesCommand) -> Result<Outcome> {
    match cmd {
        RulesCommand::List { rules, json, keywords } => list(&rules, json, keywords),
        RulesCommand::Validate { dirs } => validate_dirs(&dirs),
        RulesCommand::Test { rules } => test(&rules),
    }
}

fn list(args: &RuleArgs, as_json: bool, keywords: bool) -> Result<Outcome> {
    let set = load_rules(args, true)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if keywords {
        let mut all: Vec<&str> = set.rules.iter().flat_map(|r| RuleSet::prefilter_keywords(r).iter().map(String::as_str)).collect();
        all.sort_unstable();
        all.dedup();
        for k in all {
            writeln!(out, "{k}")?;
        }
    } else if as_json {
        for r in &set.rules {
            let v = json!({
                "id": r.id, "title": r.title, "threat": r.threat, "severity": r.severity,
                "surfaces": r.surfaces, "keywords": r.keywords, "impliedKeywords": r.implied_keywords, "requiredTexts": r.required_texts, "pattern": r.pattern_source,
                "conditions": r.conditions.len(), "view": r.view, "weight": r.weight,
                "alertType": r.alert_type, "mitre": r.mitre, "atlas": r.atlas, "file": r.file,
                "examples": {"match": r.examples_match.len(), "noMatch": r.examples_no_match.len()},
            });
            writeln!(out, "{v}")?;
        }
        for b in &set.behaviors {
            let v = json!({
                "id": b.id, "title": b.title, "threat": b.threat, "severity": b.severity,
                "detector": b.kind.name(), "windowSeconds": b.window, "alertType": b.alert_type,
                "mitre": b.mitre, "atlas": b.atlas, "file": b.file,
            });
            writeln!(out, "{v}")?;
        }
    } else {
        writeln!(out, "{:<22} {:<13} {:<26} {:>6} {:>8}  TITLE", "ID", "SEVERITY", "THREAT", "WEIGHT", "KEYWORDS")?;
        for r in &set.rules {
            writeln!(
                out,
                "{:<22} {:<13} {:<26} {:>6.2} {:>8}  {}",
                r.id,
                r.severity.as_str(),
                r.threat.as_str(),
                r.weight,
                r.keywords.len(),
                r.title
            )?;
        }
        for b in &set.behaviors {
            let detector = b.kind.name();
            writeln!(out, "{:<22} {:<13} {:<26} {detector:<17}  {}", b.id, b.severity.as_str(), b.threat.as_str(), b.title)?;
        }
    }
    out.flush()?;
    Ok(Outcome::Clean)
}

fn validate_dirs(dirs: &[std::path::PathBuf]) -> Result<Outcome> {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    if dirs.is_empty() {
        sources = load::embedded_sources();
    }
    for d in dirs {
        match load::path_sources(d) {
            Ok(s) => sources.extend(s),
            Err(e) => errors.push(e),
        }
    }
    let (set, mut compile_errors) = load::compile(&sources);
    errors.append(&mut compile_errors);
    report_validation(&set, &errors, sources.len())
}

fn test(args: &RuleArgs) -> Result<Outcome> {
    let (set, errors, files) = load_all(args);
    report_validation(&set, &errors, files)
}

/// Prints every rule error and example failure, then a one-line summary.
fn report_validation(set: &RuleSet, errors: &[RuleError], files: usize) -> Result<Outcome> {
    // Written with `?` rather than `println!`, so `rules test | head` ends quietly (main maps a
    // broken pipe to success) instead of panicking.
    let mut out = std::io::stdout().lock();
    for e in errors {
        writeln!(out, "error: {}", terminal::escape(&e.to_string()))?;
    }
    let (ran, failures) = validate::run_examples(set);
    for f in &failures {
        let want = if f.expected_match { "should match but did not" } else { "should not match but did" };
        writeln!(out, "fail: {}: rule {}: example {want}: {}", f.file, f.rule_id, terminal::escape(&f.example))?;
    }
    writeln!(
        out,
        "{} rules and {} behaviour rules from {} file(s): {} rejected; {} examples run, {} failed",
        set.rules.len(),
        set.behaviors.len(),
        files,
        errors.len(),
        ran,
        failures.len()
    )?;
    Ok(if errors.is_empty() && failures.is_empty() { Outcome::Clean } else { Outcome::Error })
}
