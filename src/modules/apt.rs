//! `apt`: install, upgrade and remove Debian packages with `apt-get`.
//!
//! One probe reads the dpkg status and the candidate version of every named
//! package, the age of the package cache and, with `autoremove`, what apt would
//! remove. The plan then runs at most one `apt-get update`, one install and one
//! removal.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::args::{bool_or, choice, opt_bool, opt_int, opt_list, opt_str};
use super::command::resolve_aliases;
use super::common::{quote, section_header, split_sections};
use super::{
    Action, Args, BuildContext, Change, ExecOutput, HostView, ModuleError, ModuleKind, ModuleSpec,
    Param, ParamKind, Plan, Predictions,
};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "apt",
    aliases: &["ansible.builtin.apt", "ansible.legacy.apt"],
    params: &[
        Param::new("name", ParamKind::List).aliases(&["pkg", "package"]),
        Param::new("state", ParamKind::Str).choices(STATES),
        Param::new("update_cache", ParamKind::Bool).aliases(&["update-cache"]),
        Param::new("cache_valid_time", ParamKind::Int),
        Param::new("purge", ParamKind::Bool),
        Param::new("autoremove", ParamKind::Bool),
        Param::new("install_recommends", ParamKind::Bool).aliases(&["install-recommends"]),
        Param::new("force_apt_get", ParamKind::Bool),
        Param::new("default_release", ParamKind::Str).aliases(&["default-release"]),
        Param::new("dpkg_options", ParamKind::Str),
        Param::new("allow_unauthenticated", ParamKind::Bool).aliases(&["allow-unauthenticated"]),
        Param::new("allow_downgrade", ParamKind::Bool).aliases(&[
            "allow-downgrade",
            "allow_downgrades",
            "allow-downgrades",
        ]),
        Param::new("allow_change_held_packages", ParamKind::Bool),
        Param::new("only_upgrade", ParamKind::Bool),
        Param::new("fail_on_autoremove", ParamKind::Bool),
        Param::new("force", ParamKind::Bool),
        Param::new("lock_timeout", ParamKind::Int),
        Param::new("update_cache_retries", ParamKind::Int),
        Param::new("update_cache_retry_max_delay", ParamKind::Int),
        Param::new("upgrade", ParamKind::Str).choices(&["dist", "full", "no", "safe", "yes"]),
        Param::new("deb", ParamKind::Str),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build,
};

const STATES: &[&str] = &[
    "present",
    "installed",
    "absent",
    "removed",
    "latest",
    "build-dep",
    "fixed",
];

/// Seconds `apt-get` waits for the dpkg lock that another apt run holds.
const DEFAULT_LOCK_TIMEOUT: i64 = 120;

/// Starts the line the apply script prints last, with the cache time after the run.
const RESULT_MARKER: &str = "vpsforge-apt-result:";

fn build(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    Ok(Box::new(Apt::from_args(&resolve_aliases(&SPEC, args))?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Present,
    Absent,
    Latest,
}

/// A package as the task names it: `nginx`, `nginx=1.22*` or `libc6:i386`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PackageSpec {
    /// The name as written, without the version, passed to apt as it is.
    pub name: String,
    /// The name without an architecture qualifier, as `dpkg-query` prints `${Package}`.
    pub base: String,
    /// A version pin; `*` and `?` match as in a shell glob.
    pub version: Option<String>,
}

impl PackageSpec {
    pub(crate) fn parse(text: &str) -> Result<PackageSpec, ModuleError> {
        let text = text.trim();
        let (name, version) = match text.split_once('=') {
            Some((name, version)) => (name, Some(version.to_string())),
            None => (text, None),
        };
        let base = name.split(':').next().unwrap_or(name);
        let valid_base = base.len() >= 2
            && base.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && base
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
        if !valid_base {
            return Err(ModuleError::InvalidArgument(format!(
                "invalid package name `{text}` in argument `name`: use a Debian package name such as `nginx`, optionally with `=VERSION` (name patterns are not supported)"
            )));
        }
        if version.as_deref() == Some("") {
            return Err(ModuleError::InvalidArgument(format!(
                "package `{text}` in argument `name` has an empty version after `=`: give a version or drop the `=`"
            )));
        }
        Ok(PackageSpec {
            name: name.to_string(),
            base: base.to_string(),
            version,
        })
    }

    /// Returns the quoted word for `apt-get install`: `name` or `name=version`.
    fn install_word(&self) -> String {
        match &self.version {
            Some(version) => format!("{}={}", quote(&self.name), quote(version)),
            None => quote(&self.name),
        }
    }

    fn version_matches(&self, installed: &str) -> bool {
        self.version
            .as_deref()
            .is_none_or(|pattern| glob_match(pattern, installed))
    }
}

/// The `apt` action; `package` builds it too.
#[derive(Debug)]
pub(crate) struct Apt {
    packages: Vec<PackageSpec>,
    state: State,
    update_cache: bool,
    /// Maximum cache age in seconds. With 0, every run refreshes the cache.
    cache_valid_time: i64,
    purge: bool,
    autoremove: bool,
    /// `apt-get` options shared by install and removal.
    options: Vec<String>,
    /// Seconds to wait for the dpkg lock.
    lock_timeout: i64,
    /// Upgrades installed packages only and leaves missing ones missing.
    only_upgrade: bool,
    /// Attempts at `apt-get update` before the task fails.
    update_retries: i64,
    /// Maximum seconds between update attempts; the wait doubles from one second.
    update_retry_max_delay: i64,
    /// Set when the task was written as `package`, so that errors name that module.
    pub(crate) via_package: bool,
}

impl Apt {
    /// Reads the arguments, which must have their aliases resolved against [`SPEC`].
    pub(crate) fn from_args(args: &Args) -> Result<Apt, ModuleError> {
        let state = match choice(args, "state", STATES, "present")?.as_str() {
            "present" | "installed" => State::Present,
            "absent" | "removed" => State::Absent,
            "latest" => State::Latest,
            other => {
                return Err(ModuleError::InvalidArgument(format!(
                    "`state: {other}` is not supported by vpsforge's `apt`: use `present`, `absent` or `latest`"
                )))
            }
        };
        if let Some(upgrade) = opt_str(args, "upgrade")? {
            if !matches!(upgrade.as_str(), "no" | "false") {
                return Err(ModuleError::InvalidArgument(format!(
                    "`upgrade: {upgrade}` is not supported by vpsforge's `apt`: run `apt-get upgrade` with the `command` module, or list the packages with `state: latest`"
                )));
            }
        }
        if opt_str(args, "deb")?.is_some() {
            return Err(ModuleError::InvalidArgument(
                "argument `deb` is not supported by vpsforge's `apt`: copy the file and install it with `command: dpkg -i FILE` and `creates`".to_string(),
            ));
        }

        let packages = opt_list(args, "name")?
            .unwrap_or_default()
            .iter()
            .map(|text| PackageSpec::parse(text))
            .collect::<Result<Vec<_>, _>>()?;

        let cache_valid_time = opt_int(args, "cache_valid_time")?;
        if cache_valid_time.is_some_and(|seconds| seconds < 0) {
            return Err(ModuleError::InvalidArgument(
                "argument `cache_valid_time` must be zero or a positive number of seconds"
                    .to_string(),
            ));
        }
        // As in Ansible since 2.4, setting `cache_valid_time` implies `update_cache`.
        let update_cache = bool_or(args, "update_cache", false)? || cache_valid_time.is_some();
        let autoremove = bool_or(args, "autoremove", false)?;

        if packages.is_empty() && !update_cache && !autoremove {
            return Err(ModuleError::InvalidArgument(
                "argument `name` is missing: name the packages, or set `update_cache` or `autoremove`"
                    .to_string(),
            ));
        }

        // vpsforge always runs `apt-get`, which is what `force_apt_get` requests.
        bool_or(args, "force_apt_get", false)?;
        let lock_timeout = opt_int(args, "lock_timeout")?.unwrap_or(DEFAULT_LOCK_TIMEOUT);
        // Ansible's defaults: five attempts, at most 12 seconds apart.
        let update_retries = opt_int(args, "update_cache_retries")?.unwrap_or(5);
        let update_retry_max_delay = opt_int(args, "update_cache_retry_max_delay")?.unwrap_or(12);
        if update_retries < 1 || update_retry_max_delay < 0 {
            return Err(ModuleError::InvalidArgument(
                "arguments `update_cache_retries` (at least 1) and `update_cache_retry_max_delay` (seconds, 0 or more) are out of range".to_string(),
            ));
        }
        Ok(Apt {
            packages,
            state,
            update_cache,
            cache_valid_time: cache_valid_time.unwrap_or(0),
            purge: bool_or(args, "purge", false)?,
            autoremove,
            options: apt_options(args, lock_timeout)?,
            lock_timeout,
            only_upgrade: bool_or(args, "only_upgrade", false)?,
            update_retries,
            update_retry_max_delay,
            via_package: false,
        })
    }

    fn names(&self) -> String {
        self.packages
            .iter()
            .map(|package| quote(&package.name))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn module_name(&self) -> &'static str {
        if self.via_package {
            "package"
        } else {
            "apt"
        }
    }

    /// Returns `apt-get -y` with the options for installs and removals.
    fn apt_get(&self) -> String {
        format!("apt-get -y {}", self.options.join(" "))
    }
}

/// Builds the `apt-get` options that the arguments select.
fn apt_options(args: &Args, lock_timeout: i64) -> Result<Vec<String>, ModuleError> {
    let mut options = vec![format!("-o DPkg::Lock::Timeout={lock_timeout}")];

    let dpkg_options =
        opt_str(args, "dpkg_options")?.unwrap_or_else(|| "force-confdef,force-confold".to_string());
    for option in dpkg_options
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
    {
        options.push(format!("-o Dpkg::Options::=--{}", quote(option)));
    }

    match opt_bool(args, "install_recommends")? {
        Some(true) => options.push("-o APT::Install-Recommends=yes".to_string()),
        Some(false) => options.push("-o APT::Install-Recommends=no".to_string()),
        None => {}
    }
    if let Some(release) = opt_str(args, "default_release")?.filter(|r| !r.is_empty()) {
        options.push(format!("-t {}", quote(&release)));
    }

    let force = bool_or(args, "force", false)?;
    if force || bool_or(args, "allow_unauthenticated", false)? {
        options.push("--allow-unauthenticated".to_string());
    }
    if force || bool_or(args, "allow_downgrade", false)? {
        options.push("--allow-downgrades".to_string());
    }
    if force || bool_or(args, "allow_change_held_packages", false)? {
        options.push("--allow-change-held-packages".to_string());
    }
    if force {
        options.push("--allow-remove-essential".to_string());
    }
    if bool_or(args, "only_upgrade", false)? {
        options.push("--only-upgrade".to_string());
    }
    if bool_or(args, "fail_on_autoremove", false)? {
        options.push("--no-remove".to_string());
    }
    Ok(options)
}

/// One line of `dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\t${Version}\n'`.
#[derive(Debug, Clone, PartialEq)]
struct DpkgStatus {
    /// The second letter of the status abbreviation: `i` installed, `c` config files only,
    /// `n` not installed, `U`/`F`/`H` half-done, `W`/`t` installed with triggers pending.
    status: char,
    version: String,
}

impl DpkgStatus {
    fn is_installed(&self) -> bool {
        matches!(self.status, 'i' | 'W' | 't')
    }

    /// Whether anything of the package is on disk, so that `purge` has work to do.
    fn has_files(&self) -> bool {
        self.status != 'n'
    }
}

fn parse_dpkg(body: &str) -> BTreeMap<String, DpkgStatus> {
    body.lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next()?.trim();
            let abbrev = fields.next()?;
            let version = fields.next().unwrap_or("").trim();
            let status = abbrev.chars().nth(1)?;
            Some((
                name.to_string(),
                DpkgStatus {
                    status,
                    version: version.to_string(),
                },
            ))
        })
        .collect()
}

/// Parses `apt-cache policy` output into the candidate version of each package.
/// The value is `None` when the package is in the cache but has no candidate.
fn parse_candidates(body: &str) -> BTreeMap<String, Option<String>> {
    let mut candidates = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in body.lines() {
        if !line.starts_with(' ') {
            if let Some(name) = line.strip_suffix(':') {
                let base = name.split(':').next().unwrap_or(name).to_string();
                candidates.insert(base.clone(), None);
                current = Some(base);
            }
            continue;
        }
        if let (Some(name), Some(candidate)) = (&current, line.trim().strip_prefix("Candidate:")) {
            let candidate = candidate.trim();
            let value = (candidate != "(none)").then(|| candidate.to_string());
            candidates.insert(name.clone(), value);
        }
    }
    candidates
}

/// The cache age facts the probe prints.
#[derive(Debug, Default)]
struct CacheTimes {
    mtime: Option<i64>,
    now: Option<i64>,
}

fn parse_cache(body: &str) -> CacheTimes {
    let values = super::common::parse_key_values(body);
    CacheTimes {
        mtime: values.get("mtime").and_then(|v| v.trim().parse().ok()),
        now: values.get("now").and_then(|v| v.trim().parse().ok()),
    }
}

impl Action for Apt {
    fn probe(&self) -> Option<String> {
        let mut script = String::new();
        script.push_str("if ! command -v dpkg-query >/dev/null 2>&1; then\n");
        script.push_str(&section_header("no-dpkg"));
        script.push_str("exit 0\nfi\n");
        if !self.packages.is_empty() {
            let names = self.names();
            script.push_str(&section_header("dpkg"));
            script.push_str(&format!(
                "dpkg-query -W -f='${{Package}}\\t${{db:Status-Abbrev}}\\t${{Version}}\\n' -- {names} 2>/dev/null || true\n"
            ));
            script.push_str(&section_header("policy"));
            script.push_str(&format!(
                "LC_ALL=C apt-cache policy -- {names} 2>/dev/null </dev/null || true\n"
            ));
        }
        script.push_str(&section_header("cache"));
        script.push_str("if [ -e /var/lib/apt/periodic/update-success-stamp ]; then echo \"mtime=$(stat -c %Y /var/lib/apt/periodic/update-success-stamp)\"; elif [ -d /var/lib/apt/lists ]; then echo \"mtime=$(stat -c %Y /var/lib/apt/lists)\"; fi\n");
        script.push_str("echo \"now=$(date +%s)\"\n");
        if self.autoremove {
            script.push_str(&section_header("autoremove"));
            script.push_str("LC_ALL=C apt-get -s autoremove 2>/dev/null </dev/null | sed -n 's/^Remv \\([^ ]*\\).*/\\1/p' || true\n");
        }
        Some(script)
    }

    fn plan(&self, probe: &ExecOutput, host: &HostView) -> Result<Plan, ModuleError> {
        let sections: BTreeMap<String, String> =
            split_sections(&probe.stdout).into_iter().collect();
        if sections.contains_key("no-dpkg") {
            let assumption = if self.via_package && host.facts.is_null() {
                " (no facts were gathered, so apt was assumed)"
            } else {
                ""
            };
            return Err(ModuleError::Failed(format!(
                "`dpkg-query` was not found on the host{assumption}: the `{}` module supports only Debian and Ubuntu hosts with apt",
                self.module_name()
            )));
        }
        let Some(cache_body) = sections.get("cache") else {
            return Err(ModuleError::Probe(format!(
                "the package probe printed no result (exit status {}): {}",
                probe.exit_code,
                probe.stderr.trim()
            )));
        };
        let installed = parse_dpkg(sections.get("dpkg").map_or("", String::as_str));
        let candidates = parse_candidates(sections.get("policy").map_or("", String::as_str));
        let cache = parse_cache(cache_body);

        let update_due = self.update_cache
            && match (self.cache_valid_time, cache.mtime, cache.now) {
                (0, _, _) => true,
                (valid, Some(mtime), Some(now)) => now - mtime > valid,
                _ => true,
            };

        let mut decisions = self.decide_packages(&installed, &candidates, update_due, host)?;

        let autoremoved: Vec<&str> = sections
            .get("autoremove")
            .map(|body| {
                body.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if !autoremoved.is_empty() {
            decisions.changes.push(summary(format!(
                "autoremove {}",
                autoremoved
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }

        // NOTE: a due cache update runs only when the task names no packages or when
        // packages change. A task whose packages already match reports no change and
        // leaves the cache as it is, because a plan without changes has no apply step.
        // For `state: latest` this means the candidate comes from the cache as it was.
        let update_alone = update_due && self.packages.is_empty();

        let mut result = Map::new();
        result.insert(
            "cache_update_time".into(),
            cache.mtime.map_or(Value::Null, |t| json!(t)),
        );
        if decisions.changes.is_empty() && !update_alone {
            result.insert("cache_updated".into(), json!(false));
            let reason = if !decisions.matched.is_empty() {
                decisions.matched.join(", ")
            } else if let (true, Some(mtime), Some(now)) =
                (self.update_cache, cache.mtime, cache.now)
            {
                format!(
                    "the package cache is {} seconds old, within `cache_valid_time` ({})",
                    now - mtime,
                    self.cache_valid_time
                )
            } else {
                "apt would autoremove no packages".to_string()
            };
            let mut plan = Plan::unchanged(reason);
            plan.result = result;
            return Ok(plan);
        }
        if update_due {
            decisions
                .changes
                .insert(0, summary("update the package cache".to_string()));
        }

        result.insert("cache_updated".into(), json!(update_due));
        let apply = self.apply_script(update_due, &decisions, !autoremoved.is_empty());
        Ok(Plan {
            changes: decisions.changes,
            reason: None,
            apply: Some(apply),
            runs_in_check_mode: false,
            skipped_in_check_mode: false,
            result,
            predicts: decisions.predicts,
        })
    }

    fn finish(&self, plan: &Plan, output: &ExecOutput) -> Result<Map<String, Value>, ModuleError> {
        if output.exit_code != 0 {
            return Err(ModuleError::Failed(format!(
                "apt-get failed with exit status {}: {}",
                output.exit_code,
                output.stderr.trim()
            )));
        }
        let mut result = plan.result.clone();
        let needle = format!("\n{RESULT_MARKER} ");
        let stdout = match output.stdout.rfind(&needle) {
            Some(at) => {
                let line = output.stdout[at + needle.len()..]
                    .lines()
                    .next()
                    .unwrap_or("");
                if let Some(time) = line
                    .strip_prefix("cache_update_time=")
                    .and_then(|t| t.trim().parse::<i64>().ok())
                {
                    result.insert("cache_update_time".into(), json!(time));
                }
                &output.stdout[..at]
            }
            None => output.stdout.as_str(),
        };
        result.insert("stdout".into(), json!(stdout));
        result.insert("stderr".into(), json!(output.stderr));
        Ok(result)
    }
}

/// The per-package outcome of a plan.
#[derive(Debug, Default)]
struct Decisions {
    changes: Vec<Change>,
    /// Quoted `apt-get install` words.
    install: Vec<String>,
    /// Quoted names to remove or purge.
    remove: Vec<String>,
    /// Reasons, one per package that already matches.
    matched: Vec<String>,
    predicts: Predictions,
}

impl Apt {
    /// Compares each named package with its dpkg status and apt candidate.
    fn decide_packages(
        &self,
        installed: &BTreeMap<String, DpkgStatus>,
        candidates: &BTreeMap<String, Option<String>>,
        update_due: bool,
        host: &HostView,
    ) -> Result<Decisions, ModuleError> {
        let mut decisions = Decisions::default();
        for package in &self.packages {
            let status = installed.get(&package.base).filter(|s| s.is_installed());
            let predicted = host.check_mode && host.predicted.packages.contains(&package.base);
            match self.state {
                State::Present | State::Latest => {
                    if predicted && status.is_none() {
                        decisions.matched.push(format!(
                            "`{}` would be installed by an earlier task",
                            package.base
                        ));
                        continue;
                    }
                    let candidate = candidates.get(&package.base).cloned().flatten();
                    match status {
                        Some(status) if package.version.is_some() => {
                            if package.version_matches(&status.version) {
                                decisions
                                    .matched
                                    .push(installed_text(package, &status.version));
                            } else {
                                decisions.changes.push(summary(format!(
                                    "change `{}` from {} to {}",
                                    package.name,
                                    status.version,
                                    package.version.as_deref().unwrap_or_default()
                                )));
                                decisions.install.push(package.install_word());
                            }
                        }
                        Some(status) if self.state == State::Latest => match &candidate {
                            Some(candidate) if candidate != &status.version => {
                                decisions.changes.push(summary(format!(
                                    "upgrade `{}` from {} to {candidate}",
                                    package.name, status.version
                                )));
                                decisions.install.push(package.install_word());
                            }
                            _ => decisions.matched.push(format!(
                                "`{}` is the newest version ({})",
                                package.name, status.version
                            )),
                        },
                        Some(status) => decisions
                            .matched
                            .push(installed_text(package, &status.version)),
                        None if self.only_upgrade => decisions.matched.push(format!(
                            "`{}` is not installed, and `only_upgrade` installs nothing new",
                            package.name
                        )),
                        None => {
                            let version = package.version.clone().or(candidate.clone());
                            if version.is_none() && !update_due {
                                return Err(ModuleError::Failed(format!(
                                    "no package matching `{}` is available: check the name, or add its repository and set `update_cache: true`",
                                    package.name
                                )));
                            }
                            let version_note =
                                version.map(|v| format!(" ({v})")).unwrap_or_default();
                            decisions
                                .changes
                                .push(summary(format!("install `{}`{version_note}", package.name)));
                            decisions.install.push(package.install_word());
                            decisions.predicts.packages.insert(package.base.clone());
                        }
                    }
                }
                State::Absent => {
                    let on_disk = installed.get(&package.base);
                    let remove_it = match on_disk {
                        Some(status) if status.is_installed() => true,
                        Some(status) => self.purge && status.has_files(),
                        None => false,
                    } || predicted;
                    if remove_it {
                        let verb = if self.purge { "purge" } else { "remove" };
                        let version_note = on_disk
                            .filter(|s| !s.version.is_empty())
                            .map(|s| format!(" ({})", s.version))
                            .unwrap_or_default();
                        let note = if predicted && on_disk.is_none_or(|s| !s.is_installed()) {
                            " that an earlier task would install"
                        } else {
                            ""
                        };
                        decisions.changes.push(summary(format!(
                            "{verb} `{}`{version_note}{note}",
                            package.name
                        )));
                        decisions.remove.push(quote(&package.name));
                    } else {
                        decisions
                            .matched
                            .push(format!("`{}` is not installed", package.name));
                    }
                }
            }
        }

        Ok(decisions)
    }

    /// Returns a script that runs `apt-get update`, retrying with a doubling wait.
    fn update_script(&self) -> String {
        let retries = self.update_retries;
        let max_delay = self.update_retry_max_delay;
        format!(
            "vf_try=1\nvf_delay=1\n\
             until apt-get -q -o DPkg::Lock::Timeout={} update </dev/null; do\n\
             \tif [ \"$vf_try\" -ge {retries} ]; then echo 'apt-get update failed {retries} times' >&2; exit 1; fi\n\
             \tsleep \"$vf_delay\"\n\
             \tvf_try=$((vf_try + 1))\n\
             \tvf_delay=$((vf_delay * 2))\n\
             \tif [ \"$vf_delay\" -gt {max_delay} ]; then vf_delay={max_delay}; fi\n\
             done\n",
            self.lock_timeout
        )
    }

    /// Returns the script that updates the cache, installs, removes and autoremoves.
    fn apply_script(&self, update_due: bool, decisions: &Decisions, autoremove: bool) -> String {
        let (install, remove) = (&decisions.install, &decisions.remove);
        let mut script = String::from("set -e\nexport DEBIAN_FRONTEND=noninteractive\n");
        // The script reaches `sh` on standard input, so apt and the maintainer scripts
        // it starts read `/dev/null` in its place.
        if update_due {
            script.push_str(&self.update_script());
        }
        if !install.is_empty() {
            script.push_str(&format!(
                "{} install -- {} </dev/null\n",
                self.apt_get(),
                install.join(" ")
            ));
        }
        if !remove.is_empty() {
            let verb = if self.purge { "purge" } else { "remove" };
            script.push_str(&format!(
                "{} {verb} -- {} </dev/null\n",
                self.apt_get(),
                remove.join(" ")
            ));
        }
        if autoremove {
            let purge = if self.purge { " --purge" } else { "" };
            script.push_str(&format!(
                "{} autoremove{purge} </dev/null\n",
                self.apt_get()
            ));
        }
        script.push_str(&format!(
            "printf '\\n%s cache_update_time=%s\\n' {} \"$(stat -c %Y /var/lib/apt/periodic/update-success-stamp 2>/dev/null || stat -c %Y /var/lib/apt/lists 2>/dev/null || true)\"\n",
            quote(RESULT_MARKER)
        ));

        script
    }
}

fn summary(text: String) -> Change {
    Change {
        summary: text,
        diff: None,
    }
}

fn installed_text(package: &PackageSpec, version: &str) -> String {
    format!("`{}` is installed ({version})", package.name)
}

/// Matches `text` against a shell-style pattern with `*` and `?`, as Ansible matches
/// version pins with `fnmatch`.
fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, t));
            p += 1;
        } else if let Some((star, matched)) = backtrack {
            p = star + 1;
            t = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn apt(value: Value) -> Apt {
        let args: Args = serde_json::from_value(value).unwrap();
        Apt::from_args(&args).unwrap()
    }

    fn plan_with(
        action: &Apt,
        stdout: &str,
        check_mode: bool,
        predicted: &Predictions,
    ) -> Result<Plan, ModuleError> {
        let host = HostView {
            check_mode,
            facts: &Value::Null,
            predicted,
        };
        let probe = ExecOutput {
            exit_code: 0,
            stdout: stdout.to_string(),
            stderr: String::new(),
        };
        action.plan(&probe, &host)
    }

    fn plan_of(action: &Apt, stdout: &str) -> Plan {
        plan_with(action, stdout, false, &Predictions::default()).unwrap()
    }

    fn summaries(plan: &Plan) -> Vec<&str> {
        plan.changes.iter().map(|c| c.summary.as_str()).collect()
    }

    /// Probe output in the format of Debian 12's dpkg and apt: nginx absent, curl installed, an old cache.
    const NGINX_ABSENT: &str = "==> dpkg <==\n\
curl\tii \t7.88.1-10+deb12u5\n\
==> policy <==\n\
nginx:\n  Installed: (none)\n  Candidate: 1.22.1-9\n  Version table:\n     1.22.1-9 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n\
curl:\n  Installed: 7.88.1-10+deb12u5\n  Candidate: 7.88.1-10+deb12u8\n  Version table:\n     7.88.1-10+deb12u8 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n *** 7.88.1-10+deb12u5 100\n        100 /var/lib/dpkg/status\n\
==> cache <==\nmtime=1700000000\nnow=1700007200\n";

    const NGINX_INSTALLED: &str = "==> dpkg <==\n\
nginx\tii \t1.22.1-9\n\
==> policy <==\n\
nginx:\n  Installed: 1.22.1-9\n  Candidate: 1.22.1-9\n  Version table:\n *** 1.22.1-9 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n        100 /var/lib/dpkg/status\n\
==> cache <==\nmtime=1700000000\nnow=1700000600\n";

    /// `dpkg -r nginx` leaves the configuration files behind.
    const NGINX_CONFIG_FILES: &str = "==> dpkg <==\n\
nginx\trc \t1.22.1-9\n\
==> policy <==\n\
nginx:\n  Installed: (none)\n  Candidate: 1.22.1-9\n  Version table:\n     1.22.1-9 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n\
==> cache <==\nmtime=1700000000\nnow=1700000600\n";

    #[test]
    fn present_installs_missing_packages() {
        let action = apt(json!({"name": ["nginx", "curl"], "state": "present"}));
        let plan = plan_of(&action, NGINX_ABSENT);
        assert_eq!(summaries(&plan), vec!["install `nginx` (1.22.1-9)"]);
        let script = plan.apply.unwrap();
        assert!(
            script.contains("export DEBIAN_FRONTEND=noninteractive"),
            "{script}"
        );
        assert!(
            script.contains("apt-get -y -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install -- nginx </dev/null"),
            "{script}"
        );
        assert!(!script.contains(" update "), "{script}");
        assert!(plan.predicts.packages.contains("nginx"));
        assert_eq!(plan.result["cache_updated"], json!(false));
    }

    #[test]
    fn present_is_unchanged_when_installed() {
        let action = apt(json!({"name": "nginx"}));
        let plan = plan_of(&action, NGINX_INSTALLED);
        assert!(!plan.changed());
        assert_eq!(
            plan.reason.as_deref(),
            Some("`nginx` is installed (1.22.1-9)")
        );
        assert!(plan.apply.is_none());
    }

    #[test]
    fn latest_upgrades_when_candidate_is_newer() {
        let action = apt(json!({"name": "curl", "state": "latest"}));
        let plan = plan_of(&action, NGINX_ABSENT);
        assert_eq!(
            summaries(&plan),
            vec!["upgrade `curl` from 7.88.1-10+deb12u5 to 7.88.1-10+deb12u8"]
        );

        let action = apt(json!({"name": "nginx", "state": "latest"}));
        let plan = plan_of(&action, NGINX_INSTALLED);
        assert!(!plan.changed());
        assert_eq!(
            plan.reason.as_deref(),
            Some("`nginx` is the newest version (1.22.1-9)")
        );
    }

    #[test]
    fn version_pin_compares_with_glob() {
        let action = apt(json!({"name": "nginx=1.22*"}));
        assert!(!plan_of(&action, NGINX_INSTALLED).changed());

        let action = apt(json!({"name": "nginx=1.24.0-1"}));
        let plan = plan_of(&action, NGINX_INSTALLED);
        assert_eq!(
            summaries(&plan),
            vec!["change `nginx` from 1.22.1-9 to 1.24.0-1"]
        );
        assert!(plan.apply.unwrap().contains("install -- nginx=1.24.0-1"));
    }

    #[test]
    fn absent_removes_and_purges() {
        let action = apt(json!({"name": "nginx", "state": "absent"}));
        let plan = plan_of(&action, NGINX_INSTALLED);
        assert_eq!(summaries(&plan), vec!["remove `nginx` (1.22.1-9)"]);
        assert!(plan.apply.unwrap().contains(" remove -- nginx </dev/null"));

        assert!(!plan_of(&action, NGINX_CONFIG_FILES).changed());
        assert!(!plan_of(&action, NGINX_ABSENT).changed());

        let action = apt(json!({"name": "nginx", "state": "absent", "purge": true}));
        let plan = plan_of(&action, NGINX_CONFIG_FILES);
        assert_eq!(summaries(&plan), vec!["purge `nginx` (1.22.1-9)"]);
        assert!(plan.apply.unwrap().contains(" purge -- nginx </dev/null"));
    }

    #[test]
    fn cache_update_follows_valid_time() {
        // The cache is 600 seconds old.
        let fresh = apt(json!({"name": "nginx", "cache_valid_time": 3600}));
        assert!(!plan_of(&fresh, NGINX_INSTALLED).changed());

        let stale = apt(
            json!({"name": "nginx", "update_cache": true, "cache_valid_time": 300, "state": "absent"}),
        );
        let plan = plan_of(&stale, NGINX_INSTALLED);
        assert_eq!(
            summaries(&plan),
            vec!["update the package cache", "remove `nginx` (1.22.1-9)"]
        );
        let script = plan.apply.unwrap();
        let update = script.find("update </dev/null").unwrap();
        let remove = script.find(" remove -- ").unwrap();
        assert!(update < remove, "{script}");
        assert_eq!(plan.result["cache_updated"], json!(true));
    }

    #[test]
    fn update_alone_is_a_change() {
        let action = apt(json!({"update_cache": true}));
        let plan = plan_of(&action, "==> cache <==\nmtime=1700000000\nnow=1700000600\n");
        assert_eq!(summaries(&plan), vec!["update the package cache"]);
        assert!(plan
            .apply
            .unwrap()
            .contains("apt-get -q -o DPkg::Lock::Timeout=120 update"));

        let action = apt(json!({"update_cache": true, "cache_valid_time": 3600}));
        let plan = plan_of(&action, "==> cache <==\nmtime=1700000000\nnow=1700000600\n");
        assert!(!plan.changed());
        assert_eq!(
            plan.reason.as_deref(),
            Some("the package cache is 600 seconds old, within `cache_valid_time` (3600)")
        );
    }

    #[test]
    fn unknown_package_fails_unless_cache_updates() {
        let probe =
            "==> dpkg <==\n==> policy <==\n==> cache <==\nmtime=1700000000\nnow=1700000600\n";
        let action = apt(json!({"name": "no-such-package"}));
        let error = plan_with(&action, probe, false, &Predictions::default()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("no package matching `no-such-package`"),
            "{error}"
        );

        let action = apt(json!({"name": "no-such-package", "update_cache": true}));
        let plan = plan_of(&action, probe);
        assert_eq!(
            summaries(&plan),
            vec!["update the package cache", "install `no-such-package`"]
        );
    }

    #[test]
    fn check_mode_trusts_predicted_packages() {
        let mut predicted = Predictions::default();
        predicted.packages.insert("nginx".to_string());
        let probe = "==> dpkg <==\n==> policy <==\n==> cache <==\nmtime=1\nnow=2\n";
        let action = apt(json!({"name": "nginx"}));
        let plan = plan_with(&action, probe, true, &predicted).unwrap();
        assert!(!plan.changed());
        assert_eq!(
            plan.reason.as_deref(),
            Some("`nginx` would be installed by an earlier task")
        );
    }

    #[test]
    fn autoremove_lists_packages() {
        let action = apt(json!({"autoremove": true, "purge": true}));
        let probe = "==> cache <==\nmtime=1\nnow=2\n==> autoremove <==\nlibfoo1\nlibbar2\n";
        let plan = plan_of(&action, probe);
        assert_eq!(summaries(&plan), vec!["autoremove `libfoo1`, `libbar2`"]);
        assert!(plan
            .apply
            .unwrap()
            .contains(" autoremove --purge </dev/null"));
        let plan = plan_of(
            &action,
            "==> cache <==\nmtime=1\nnow=2\n==> autoremove <==\n",
        );
        assert!(!plan.changed());
        assert_eq!(
            plan.reason.as_deref(),
            Some("apt would autoremove no packages")
        );
    }

    #[test]
    fn options_follow_arguments() {
        let action = apt(json!({
            "name": "nginx",
            "install_recommends": false,
            "default_release": "bookworm-backports",
            "dpkg_options": "force-confnew",
            "allow_downgrade": true,
            "lock_timeout": 5,
        }));
        let plan = plan_of(&action, NGINX_ABSENT);
        let script = plan.apply.unwrap();
        assert!(
            script.contains("apt-get -y -o DPkg::Lock::Timeout=5 -o Dpkg::Options::=--force-confnew -o APT::Install-Recommends=no -t bookworm-backports --allow-downgrades install -- nginx"),
            "{script}"
        );
    }

    #[test]
    fn missing_dpkg_is_reported() {
        let mut action = apt(json!({"name": "nginx"}));
        action.via_package = true;
        let error =
            plan_with(&action, "==> no-dpkg <==\n", false, &Predictions::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`dpkg-query` was not found on the host (no facts were gathered, so apt was assumed): the `package` module supports only Debian and Ubuntu hosts with apt"
        );
    }

    #[test]
    fn build_rejects_unsupported_arguments() {
        for (value, fragment) in [
            (
                json!({"upgrade": "dist"}),
                "`upgrade: dist` is not supported",
            ),
            (
                json!({"deb": "/tmp/x.deb"}),
                "argument `deb` is not supported",
            ),
            (
                json!({"name": "nginx", "state": "build-dep"}),
                "`state: build-dep` is not supported",
            ),
            (
                json!({"name": "nginx", "state": "installd"}),
                "must be one of",
            ),
            (json!({"name": "ngin*"}), "invalid package name `ngin*`"),
            (json!({"name": "nginx="}), "empty version"),
            (json!({}), "argument `name` is missing"),
            (
                json!({"name": "nginx", "cache_valid_time": -1}),
                "`cache_valid_time`",
            ),
        ] {
            let args: Args = serde_json::from_value(value.clone()).unwrap();
            let error = Apt::from_args(&args).unwrap_err();
            assert!(
                error.to_string().contains(fragment),
                "{value}: got `{error}`"
            );
        }
        let args: Args =
            serde_json::from_value(json!({"name": "nginx", "upgrade": false})).unwrap();
        assert!(Apt::from_args(&args).is_ok());
    }

    #[test]
    fn aliases_are_resolved() {
        let context = BuildContext {
            search_paths: &[],
            render_template: &|_| Ok(String::new()),
            facts: &Value::Null,
        };
        let args: Args =
            serde_json::from_value(json!({"pkg": "nginx", "update-cache": "yes"})).unwrap();
        let Ok(action) = build(&args, &context) else {
            panic!("aliases rejected");
        };
        let plan = action
            .plan(
                &ExecOutput {
                    stdout: NGINX_INSTALLED.to_string(),
                    ..ExecOutput::default()
                },
                &HostView {
                    check_mode: false,
                    facts: &Value::Null,
                    predicted: &Predictions::default(),
                },
            )
            .unwrap();
        assert!(!plan.changed());
        assert_eq!(
            plan.reason.as_deref(),
            Some("`nginx` is installed (1.22.1-9)")
        );
    }

    #[test]
    fn glob_match_handles_wildcards() {
        for (pattern, text, expected) in [
            ("1.22*", "1.22.1-9", true),
            ("1.22*", "1.24.0", false),
            ("1.2?.1*", "1.22.1-9", true),
            ("*deb12*", "7.88.1-10+deb12u5", true),
            ("1.0", "1.0", true),
            ("1.0", "1.0.1", false),
        ] {
            assert_eq!(glob_match(pattern, text), expected, "{pattern} vs {text}");
        }
    }

    #[test]
    fn scripts_pass_sh_syntax_check() {
        let action = apt(
            json!({"name": ["nginx", "libc6:i386"], "update_cache": true, "autoremove": true, "purge": true, "state": "absent"}),
        );
        let probe = action.probe().unwrap();
        let plan = plan_of(&action, NGINX_INSTALLED);
        for script in [probe, plan.apply.unwrap()] {
            let status = Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(&script)
                .status()
                .unwrap();
            assert!(status.success(), "{script}");
        }
    }

    #[test]
    fn probe_reads_this_host() {
        // The probe only reads, so it runs here; skip where dpkg is missing.
        if Command::new("dpkg-query")
            .arg("--version")
            .output()
            .is_err()
        {
            return;
        }
        let action = apt(json!({"name": ["dpkg", "no-such-package-vf"]}));
        let output = Command::new("sh")
            .arg("-c")
            .arg(action.probe().unwrap())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let sections: BTreeMap<String, String> = split_sections(&stdout).into_iter().collect();
        let installed = parse_dpkg(&sections["dpkg"]);
        assert!(installed["dpkg"].is_installed(), "{stdout}");
        assert!(!installed.contains_key("no-such-package-vf"));
        assert!(parse_cache(&sections["cache"]).now.is_some());
    }

    #[test]
    fn finish_reads_cache_time() {
        let action = apt(json!({"name": "nginx", "update_cache": true}));
        let plan = plan_of(&action, NGINX_ABSENT);
        let output = ExecOutput {
            exit_code: 0,
            stdout: format!(
                "Setting up nginx (1.22.1-9) ...\n\n{RESULT_MARKER} cache_update_time=1700009999\n"
            ),
            stderr: String::new(),
        };
        let result = action.finish(&plan, &output).unwrap();
        assert_eq!(result["cache_update_time"], json!(1700009999));
        assert_eq!(result["cache_updated"], json!(true));
        assert_eq!(result["stdout"], json!("Setting up nginx (1.22.1-9) ...\n"));

        let failed = ExecOutput {
            exit_code: 100,
            stdout: String::new(),
            stderr: "E: Unable to locate package nginx\n".to_string(),
        };
        let error = action.finish(&plan, &failed).unwrap_err();
        assert_eq!(
            error.to_string(),
            "apt-get failed with exit status 100: E: Unable to locate package nginx"
        );
    }

    /// Runs the update loop for real against a stand-in `apt-get` that fails twice.
    #[test]
    fn update_retries_until_success() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("apt-get");
        let counter = dir.path().join("calls");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho x >> '{}'\n[ $(wc -l < '{}') -ge 3 ]\n",
                counter.display(),
                counter.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );

        for (retries, expected_status, expected_calls) in [(5, 0, 3), (2, 1, 2)] {
            let _ = std::fs::remove_file(&counter);
            let action = apt(json!({
                "update_cache": true,
                "update_cache_retries": retries,
                "update_cache_retry_max_delay": 0,
            }));
            let output = Command::new("sh")
                .arg("-c")
                .arg(format!("set -e\n{}", action.update_script()))
                .env("PATH", &path)
                .output()
                .unwrap();
            assert_eq!(
                output.status.code(),
                Some(expected_status),
                "retries {retries}"
            );
            let calls = std::fs::read_to_string(&counter).unwrap().lines().count();
            assert_eq!(calls, expected_calls, "retries {retries}");
        }
    }

    #[test]
    fn only_upgrade_skips_missing_packages() {
        let action =
            apt(json!({"name": ["nginx", "curl"], "state": "latest", "only_upgrade": true}));
        let plan = plan_of(&action, NGINX_ABSENT);
        assert_eq!(
            summaries(&plan),
            vec!["upgrade `curl` from 7.88.1-10+deb12u5 to 7.88.1-10+deb12u8"]
        );
        assert!(plan
            .apply
            .unwrap()
            .contains("--only-upgrade install -- curl </dev/null"));
        assert!(plan.predicts.packages.is_empty());
    }
}
