//! `user`: local accounts, created and changed with `useradd`, `usermod` and `userdel`.
//!
//! The password is an already-hashed value compared with the shadow entry. It is
//! a secret: summaries, diffs and results only state that it changed, and the
//! apply script hands it to `chpasswd -e` on standard input so it never shows in
//! the process list.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::args::{bool_or, choice, opt_bool, opt_int, opt_list, opt_str, req_str};
use super::common::{quote, section_header, split_sections};
use super::group::validate_name;
use super::{
    Action, Args, BuildContext, Change, Diff, ExecOutput, HostView, ModuleError, ModuleKind,
    ModuleSpec, Param, ParamKind, Plan,
};
use crate::secret::Secret;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "user",
    aliases: &["ansible.builtin.user", "ansible.legacy.user"],
    params: &[
        Param::new("name", ParamKind::Str)
            .required()
            .aliases(&["user"]),
        Param::new("state", ParamKind::Str).choices(&["present", "absent"]),
        Param::new("uid", ParamKind::Int),
        Param::new("non_unique", ParamKind::Bool),
        Param::new("group", ParamKind::Str),
        Param::new("groups", ParamKind::List),
        Param::new("append", ParamKind::Bool),
        Param::new("shell", ParamKind::Str),
        Param::new("home", ParamKind::Str),
        Param::new("skeleton", ParamKind::Str),
        Param::new("create_home", ParamKind::Bool).aliases(&["createhome"]),
        Param::new("move_home", ParamKind::Bool),
        Param::new("system", ParamKind::Bool),
        Param::new("comment", ParamKind::Str),
        Param::new("password", ParamKind::Str),
        Param::new("update_password", ParamKind::Str).choices(&["always", "on_create"]),
        Param::new("remove", ParamKind::Bool),
        Param::new("force", ParamKind::Bool),
        Param::new("expires", ParamKind::Raw),
        Param::new("password_lock", ParamKind::Bool),
        Param::new("password_expire_max", ParamKind::Int),
        Param::new("password_expire_min", ParamKind::Int),
        Param::new("generate_ssh_key", ParamKind::Bool),
        Param::new("ssh_key_bits", ParamKind::Int),
        Param::new("ssh_key_type", ParamKind::Str),
        Param::new("ssh_key_file", ParamKind::Str),
        Param::new("ssh_key_comment", ParamKind::Str),
        Param::new("ssh_key_passphrase", ParamKind::Str),
        Param::new("local", ParamKind::Bool),
        Param::new("umask", ParamKind::Str),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build,
};

/// Arguments that Ansible documents and vpsforge rejects instead of ignoring.
const UNSUPPORTED: &[&str] = &[
    "expires",
    "password_lock",
    "password_expire_max",
    "password_expire_min",
    "generate_ssh_key",
    "ssh_key_bits",
    "ssh_key_type",
    "ssh_key_file",
    "ssh_key_comment",
    "ssh_key_passphrase",
    "local",
    "umask",
];

const ABSENT: &str = "vf-absent";
const UNREADABLE: &str = "vf-unreadable";

#[derive(Debug, Clone)]
pub struct User {
    name: String,
    present: bool,
    uid: Option<u32>,
    non_unique: bool,
    group: Option<String>,
    /// `None` leaves the supplementary groups alone; an empty list removes them all unless `append`.
    groups: Option<Vec<String>>,
    append: bool,
    shell: Option<String>,
    home: Option<String>,
    skeleton: Option<String>,
    create_home: bool,
    move_home: bool,
    system: bool,
    comment: Option<String>,
    password: Option<Secret>,
    update_always: bool,
    remove: bool,
    force: bool,
}

pub fn build(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    Ok(Box::new(User::from_args(args)?))
}

fn invalid(message: String) -> ModuleError {
    ModuleError::InvalidArgument(message)
}

/// Rejects a value that would corrupt a `passwd` or `shadow` line.
fn check_field(argument: &str, value: &str) -> Result<(), ModuleError> {
    if value.contains([':', '\n', '\r']) {
        return Err(invalid(format!(
            "argument `{argument}` must not contain `:` or a line break"
        )));
    }
    Ok(())
}

impl User {
    pub fn from_args(args: &Args) -> Result<User, ModuleError> {
        for name in UNSUPPORTED {
            let set = match args.get(*name) {
                None | Some(Value::Null) | Some(Value::Bool(false)) => false,
                Some(Value::String(s)) => !s.is_empty(),
                Some(_) => true,
            };
            if set {
                return Err(invalid(format!(
                    "argument `{name}` of the `user` module is not supported by vpsforge; remove it or manage that setting with a `command` task"
                )));
            }
        }

        let name = match opt_str(args, "name")? {
            Some(name) => name,
            None => req_str(args, "user")?,
        };
        validate_name(&name)?;
        let uid = match opt_int(args, "uid")? {
            None => None,
            Some(uid) => Some(u32::try_from(uid).map_err(|_| {
                invalid(format!(
                    "argument `uid` must be between 0 and {}, not `{uid}`",
                    u32::MAX
                ))
            })?),
        };
        let group = opt_str(args, "group")?.filter(|g| !g.is_empty());
        if let Some(group) = &group {
            check_field("group", group)?;
        }
        let groups = opt_list(args, "groups")?;
        if let Some(groups) = &groups {
            for group in groups {
                check_field("groups", group)?;
                if group.contains(',') || group.contains(char::is_whitespace) {
                    return Err(invalid(format!(
                        "argument `groups` has an invalid group name `{group}`"
                    )));
                }
            }
        }
        for argument in ["shell", "home", "comment", "skeleton"] {
            if let Some(value) = opt_str(args, argument)? {
                check_field(argument, &value)?;
            }
        }
        let home = opt_str(args, "home")?;
        if let Some(home) = &home {
            if !home.starts_with('/') {
                return Err(invalid(format!(
                    "argument `home` must be an absolute path, not `{home}`"
                )));
            }
        }
        let password = opt_str(args, "password")?;
        if let Some(password) = &password {
            if password.contains([':', '\n', '\r']) {
                return Err(invalid(
                    "argument `password` must be a hash without `:` or line breaks, as `mkpasswd` or the `password_hash` filter print it".into(),
                ));
            }
        }
        let create_home = match opt_bool(args, "create_home")? {
            Some(value) => value,
            None => bool_or(args, "createhome", true)?,
        };
        let non_unique = bool_or(args, "non_unique", false)?;
        if non_unique && uid.is_none() {
            return Err(invalid(
                "argument `non_unique` requires `uid`; set `uid` or remove `non_unique`".into(),
            ));
        }

        Ok(User {
            name,
            present: choice(args, "state", &["present", "absent"], "present")? == "present",
            uid,
            non_unique,
            group,
            groups,
            append: bool_or(args, "append", false)?,
            shell: opt_str(args, "shell")?,
            home,
            skeleton: opt_str(args, "skeleton")?,
            create_home,
            move_home: bool_or(args, "move_home", false)?,
            system: bool_or(args, "system", false)?,
            comment: opt_str(args, "comment")?,
            password: password.map(Secret::new),
            update_always: choice(args, "update_password", &["always", "on_create"], "always")?
                == "always",
            remove: bool_or(args, "remove", false)?,
            force: bool_or(args, "force", false)?,
        })
    }

    /// Groups named in `group` and `groups`, whose existence the probe checks.
    fn referenced_groups(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        if let Some(group) = &self.group {
            names.push(group.clone());
        }
        if let Some(groups) = &self.groups {
            names.extend(groups.iter().cloned());
        }
        names.dedup();
        names
    }

    fn home_path_script(&self) -> String {
        match &self.home {
            Some(home) => quote(home),
            None => "\"$vf_home\"".to_string(),
        }
    }
}

/// One line of `getent passwd`: `name:x:uid:gid:gecos:home:shell`.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

pub fn parse_passwd_line(line: &str) -> Option<PasswdEntry> {
    let fields: Vec<&str> = line.trim_end_matches(['\n', '\r']).split(':').collect();
    if fields.len() != 7 {
        return None;
    }
    Some(PasswdEntry {
        name: fields[0].to_string(),
        uid: fields[2].parse().ok()?,
        gid: fields[3].parse().ok()?,
        gecos: fields[4].to_string(),
        home: fields[5].to_string(),
        shell: fields[6].to_string(),
    })
}

/// The probe output, parsed.
#[derive(Debug, Default)]
struct Probed {
    passwd: Option<PasswdEntry>,
    primary_group: Option<String>,
    /// All groups from `id -Gn`, the primary one included.
    groups: Vec<String>,
    /// Field 2 of the shadow entry, `None` when unreadable or not probed.
    shadow: Option<Secret>,
    shadow_unreadable: bool,
    home_exists: bool,
    missing_groups: Vec<String>,
    group_named_like_user: bool,
}

fn parse_probe(output: &ExecOutput) -> Result<Probed, ModuleError> {
    let sections = split_sections(&output.stdout);
    if !sections.iter().any(|(name, _)| name == "passwd") {
        return Err(ModuleError::Probe(format!(
            "the user probe printed no `passwd` section: {}",
            output.stderr.trim()
        )));
    }
    let mut probed = Probed::default();
    for (name, body) in &sections {
        let first = body.lines().next().unwrap_or("").trim_end();
        match name.as_str() {
            "passwd" => probed.passwd = parse_passwd_line(first),
            "primary" if first != ABSENT => probed.primary_group = Some(first.to_string()),
            "groups" if first != ABSENT => {
                probed.groups = first.split_whitespace().map(String::from).collect();
            }
            "shadow" if first == UNREADABLE => probed.shadow_unreadable = true,
            "shadow" if first != ABSENT => probed.shadow = Some(Secret::new(first)),
            "home" => probed.home_exists = first == "present",
            "missing-groups" => {
                probed.missing_groups = body.lines().map(String::from).collect();
            }
            "own-group" => probed.group_named_like_user = first == "present",
            _ => {}
        }
    }
    Ok(probed)
}

fn join_names(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Action for User {
    fn probe(&self) -> Option<String> {
        let name = quote(&self.name);
        let mut script = String::new();
        script.push_str(&section_header("passwd"));
        script.push_str(&format!(
            "vf_entry=$(getent passwd {name}) || vf_entry={ABSENT}\nprintf '%s\\n' \"$vf_entry\"\n"
        ));

        script.push_str(&section_header("primary"));
        script.push_str(&format!("id -gn {name} 2>/dev/null || echo {ABSENT}\n"));
        script.push_str(&section_header("groups"));
        script.push_str(&format!("id -Gn {name} 2>/dev/null || echo {ABSENT}\n"));

        if self.password.is_some() {
            script.push_str(&section_header("shadow"));
            script.push_str(&format!(
                "if [ \"$vf_entry\" = {ABSENT} ]; then echo {ABSENT}; else vf_shadow=$(getent shadow {name}) && printf '%s\\n' \"$vf_shadow\" | cut -d: -f2 || echo {UNREADABLE}; fi\n"
            ));
        }

        script.push_str(&section_header("home"));
        script.push_str("vf_home=$(printf '%s\\n' \"$vf_entry\" | cut -d: -f6)\n");
        script.push_str(&format!(
            "if [ \"$vf_entry\" != {ABSENT} ] && [ -d {} ]; then echo present; else echo absent; fi\n",
            self.home_path_script()
        ));

        let groups = self.referenced_groups();
        if !groups.is_empty() {
            let words: Vec<String> = groups.iter().map(|g| quote(g)).collect();
            script.push_str(&section_header("missing-groups"));
            script.push_str(&format!(
                "for vf_group in {}; do getent group \"$vf_group\" >/dev/null || printf '%s\\n' \"$vf_group\"; done\n",
                words.join(" ")
            ));
        }

        script.push_str(&section_header("own-group"));
        script.push_str(&format!(
            "if getent group {name} >/dev/null; then echo present; else echo absent; fi\n"
        ));
        Some(script)
    }

    fn plan(&self, probe: &ExecOutput, host: &HostView) -> Result<Plan, ModuleError> {
        let probed = parse_probe(probe)?;
        if !self.present {
            return Ok(self.plan_absent(&probed));
        }

        // A group that an earlier task would create in check mode counts as existing.
        let missing: Vec<String> = probed
            .missing_groups
            .iter()
            .filter(|g| !(host.check_mode && host.predicted.groups.contains(*g)))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(ModuleError::Failed(format!(
                "group {} does not exist; create it first with the `group` module",
                join_names(&missing)
            )));
        }

        match &probed.passwd {
            None => Ok(self.plan_create(&probed, host)),
            Some(entry) => self.plan_modify(entry, &probed),
        }
    }

    fn finish(&self, plan: &Plan, output: &ExecOutput) -> Result<Map<String, Value>, ModuleError> {
        if output.exit_code != 0 {
            return Err(ModuleError::Failed(format!(
                "changing user `{}` failed with exit status {}: {}",
                self.name,
                output.exit_code,
                output.stderr.trim()
            )));
        }
        let mut result = plan.result.clone();
        let sections = split_sections(&output.stdout);
        let entry = sections
            .iter()
            .find(|(name, _)| name == "passwd")
            .and_then(|(_, body)| body.lines().find_map(parse_passwd_line));
        if let Some(entry) = entry {
            fill_entry(&mut result, &entry);
        }
        Ok(result)
    }
}

fn fill_entry(result: &mut Map<String, Value>, entry: &PasswdEntry) {
    result.insert("uid".into(), Value::from(entry.uid));
    result.insert("group".into(), Value::from(entry.gid));
    result.insert("home".into(), Value::from(entry.home.clone()));
    result.insert("shell".into(), Value::from(entry.shell.clone()));
    result.insert("comment".into(), Value::from(entry.gecos.clone()));
}

impl User {
    fn base_result(&self) -> Map<String, Value> {
        let mut result = Map::new();
        result.insert("name".into(), Value::from(self.name.clone()));
        result.insert(
            "state".into(),
            Value::from(if self.present { "present" } else { "absent" }),
        );
        if self.present {
            result.insert("system".into(), Value::from(self.system));
            result.insert("append".into(), Value::from(self.append));
            result.insert("create_home".into(), Value::from(self.create_home));
            result.insert("move_home".into(), Value::from(self.move_home));
            if let Some(groups) = &self.groups {
                result.insert("groups".into(), Value::from(groups.join(",")));
            }
            if self.password.is_some() {
                result.insert("password".into(), Value::from("NOT_LOGGING_PASSWORD"));
            }
        } else {
            result.insert("remove".into(), Value::from(self.remove));
            result.insert("force".into(), Value::from(self.force));
        }
        result
    }

    /// Returns a script that prints the `passwd` line after the apply step, so `finish` can register the assigned ids.
    fn report_script(&self) -> String {
        format!(
            "{}getent passwd {}\n",
            section_header("passwd"),
            quote(&self.name)
        )
    }

    fn password_script(&self, password: &Secret) -> String {
        format!(
            "printf '%s:%s\\n' {} {} | chpasswd -e\n",
            quote(&self.name),
            quote(password.expose())
        )
    }

    fn create_home_script(&self) -> String {
        let name = quote(&self.name);
        let skeleton = quote(self.skeleton.as_deref().unwrap_or("/etc/skel"));
        format!(
            "vf_home=$(getent passwd {name} | cut -d: -f6)\n\
             if command -v mkhomedir_helper >/dev/null 2>&1; then mkhomedir_helper {name} 0022 {skeleton}; \
             else mkdir -p -- \"$vf_home\"; cp -R {skeleton}/. \"$vf_home\" 2>/dev/null || true; chown -R {name}: \"$vf_home\"; fi\n"
        )
    }

    fn plan_absent(&self, probed: &Probed) -> Plan {
        let Some(entry) = &probed.passwd else {
            return Plan {
                result: self.base_result(),
                ..Plan::unchanged(format!("user `{}` is absent", self.name))
            };
        };
        let mut command = String::from("userdel");
        if self.force {
            command.push_str(" -f");
        }
        if self.remove {
            command.push_str(" -r");
        }
        let removal = if self.remove {
            format!(" and its home `{}`", entry.home)
        } else {
            String::new()
        };
        Plan {
            changes: vec![Change {
                summary: format!("remove user `{}` (uid {}){removal}", self.name, entry.uid),
                diff: None,
            }],
            apply: Some(format!("set -e\n{command} {}\n", quote(&self.name))),
            result: self.base_result(),
            ..Plan::default()
        }
    }

    fn plan_create(&self, probed: &Probed, host: &HostView) -> Plan {
        let mut command = String::from("useradd");
        if let Some(uid) = self.uid {
            command.push_str(&format!(" -u {uid}"));
            if self.non_unique {
                command.push_str(" -o");
            }
        }
        match &self.group {
            Some(group) => command.push_str(&format!(" -g {}", quote(group))),
            // As Ansible does: with a group named like the user already there, `useradd`
            // would fail trying to create it when USERGROUPS_ENAB is set, so ask for none.
            None if probed.group_named_like_user
                || (host.check_mode && host.predicted.groups.contains(&self.name)) =>
            {
                command.push_str(" -N")
            }
            None => {}
        }
        if let Some(groups) = self.groups.as_ref().filter(|g| !g.is_empty()) {
            command.push_str(&format!(" -G {}", quote(&groups.join(","))));
        }
        if let Some(comment) = &self.comment {
            command.push_str(&format!(" -c {}", quote(comment)));
        }
        if let Some(home) = &self.home {
            command.push_str(&format!(" -d {}", quote(home)));
        }
        if let Some(shell) = &self.shell {
            command.push_str(&format!(" -s {}", quote(shell)));
        }
        if self.create_home {
            command.push_str(" -m");
            if let Some(skeleton) = &self.skeleton {
                command.push_str(&format!(" -k {}", quote(skeleton)));
            }
        } else {
            command.push_str(" -M");
        }
        if self.system {
            command.push_str(" -r");
        }

        let mut apply = format!("set -e\n{command} {}\n", quote(&self.name));
        let mut summary = format!("create user `{}`", self.name);
        if let Some(password) = &self.password {
            apply.push_str(&self.password_script(password));
            summary.push_str(" with a password");
        }
        apply.push_str(&self.report_script());

        let after = self.describe(None, None);
        let mut plan = Plan {
            changes: vec![Change {
                summary,
                diff: Some(Diff {
                    header: format!("user {}", self.name),
                    before: String::new(),
                    after,
                }),
            }],
            apply: Some(apply),
            result: self.base_result(),
            ..Plan::default()
        };
        plan.predicts.users.insert(self.name.clone());
        if self.create_home {
            let home = self
                .home
                .clone()
                .unwrap_or_else(|| format!("/home/{}", self.name));
            plan.predicts.directories.insert(home);
        }
        plan
    }

    fn plan_modify(&self, entry: &PasswdEntry, probed: &Probed) -> Result<Plan, ModuleError> {
        let mut options: Vec<String> = Vec::new();
        let mut changes: Vec<Change> = Vec::new();
        let summary = |text: String| Change {
            summary: text,
            diff: None,
        };

        if let Some(uid) = self.uid.filter(|uid| *uid != entry.uid) {
            options.push(format!("-u {uid}"));
            if self.non_unique {
                options.push("-o".into());
            }
            changes.push(summary(format!(
                "change uid of `{}` from {} to {uid}",
                self.name, entry.uid
            )));
        }

        let primary = probed
            .primary_group
            .clone()
            .unwrap_or_else(|| entry.gid.to_string());
        if let Some(group) = &self.group {
            let same = match group.parse::<u32>() {
                Ok(gid) => gid == entry.gid,
                Err(_) => *group == primary,
            };
            if !same {
                options.push(format!("-g {}", quote(group)));
                changes.push(summary(format!(
                    "change primary group of `{}` from `{primary}` to `{group}`",
                    self.name
                )));
            }
        }

        if let Some(desired) = &self.groups {
            let current: BTreeSet<&str> = probed
                .groups
                .iter()
                .map(String::as_str)
                .filter(|g| *g != primary)
                .collect();
            let requested: BTreeSet<&str> = desired
                .iter()
                .map(String::as_str)
                .filter(|g| *g != primary && Some(*g) != self.group.as_deref())
                .collect();
            let added: Vec<String> = requested
                .difference(&current)
                .map(|g| g.to_string())
                .collect();
            let removed: Vec<String> = if self.append {
                Vec::new()
            } else {
                current
                    .difference(&requested)
                    .map(|g| g.to_string())
                    .collect()
            };
            if !added.is_empty() || !removed.is_empty() {
                let list: Vec<&str> = if self.append {
                    requested.iter().copied().collect()
                } else {
                    desired.iter().map(String::as_str).collect()
                };
                if self.append {
                    options.push("-a".into());
                }
                options.push(format!("-G {}", quote(&list.join(","))));
                if !added.is_empty() {
                    changes.push(summary(format!(
                        "add `{}` to group {}",
                        self.name,
                        join_names(&added)
                    )));
                }
                if !removed.is_empty() {
                    changes.push(summary(format!(
                        "remove `{}` from group {}",
                        self.name,
                        join_names(&removed)
                    )));
                }
            }
        }

        if let Some(comment) = self.comment.as_ref().filter(|c| **c != entry.gecos) {
            options.push(format!("-c {}", quote(comment)));
            changes.push(summary(format!(
                "change comment of `{}` from `{}` to `{comment}`",
                self.name, entry.gecos
            )));
        }
        if let Some(home) = self.home.as_ref().filter(|h| **h != entry.home) {
            options.push(format!("-d {}", quote(home)));
            let moving = if self.move_home {
                options.push("-m".into());
                " and move its files"
            } else {
                ""
            };
            changes.push(summary(format!(
                "change home of `{}` from `{}` to `{home}`{moving}",
                self.name, entry.home
            )));
        }
        if let Some(shell) = self.shell.as_ref().filter(|s| **s != entry.shell) {
            options.push(format!("-s {}", quote(shell)));
            changes.push(summary(format!(
                "change shell of `{}` from `{}` to `{shell}`",
                self.name, entry.shell
            )));
        }

        let mut apply = String::from("set -e\n");
        if !options.is_empty() {
            apply.push_str(&format!(
                "usermod {} {}\n",
                options.join(" "),
                quote(&self.name)
            ));
        }

        if let Some(password) = self.password.as_ref().filter(|_| self.update_always) {
            if probed.shadow_unreadable {
                return Err(ModuleError::Probe(format!(
                    "cannot read the shadow entry of user `{}` to compare the password; run the task with `become: true`",
                    self.name
                )));
            }
            if probed.shadow.as_ref() != Some(password) {
                apply.push_str(&self.password_script(password));
                changes.push(summary("password changed".into()));
            }
        }

        // As Ansible does, an existing user whose home folder is missing gets one when `create_home` is on.
        let moves_home = self.move_home && self.home.as_ref().is_some_and(|h| *h != entry.home);
        if self.create_home && !probed.home_exists && !moves_home {
            let home = self.home.clone().unwrap_or_else(|| entry.home.clone());
            apply.push_str(&self.create_home_script());
            changes.push(summary(format!("create home folder `{home}`")));
        }

        let mut result = self.base_result();
        fill_entry(&mut result, entry);
        if changes.is_empty() {
            return Ok(Plan {
                result,
                ..Plan::unchanged(format!("user `{}` exists (uid {})", self.name, entry.uid))
            });
        }

        let before_groups: Vec<String> = probed
            .groups
            .iter()
            .filter(|g| **g != primary)
            .cloned()
            .collect();
        let before = describe_entry(entry, &primary, &before_groups);
        let after = self.describe(Some(entry), Some((&primary, &before_groups)));
        if before != after {
            if let Some(first) = changes.first_mut() {
                first.diff = Some(Diff {
                    header: format!("user {}", self.name),
                    before,
                    after,
                });
            }
        }
        apply.push_str(&self.report_script());
        Ok(Plan {
            changes,
            apply: Some(apply),
            result,
            ..Plan::default()
        })
    }

    /// Renders the desired account as `key: value` lines for a diff, starting from the
    /// current entry so unset arguments keep their values. The password never appears.
    fn describe(
        &self,
        entry: Option<&PasswdEntry>,
        current: Option<(&String, &Vec<String>)>,
    ) -> String {
        let uid = self
            .uid
            .map(|u| u.to_string())
            .or_else(|| entry.map(|e| e.uid.to_string()))
            .unwrap_or_else(|| "(assigned)".into());
        let group = self
            .group
            .clone()
            .or_else(|| current.map(|(primary, _)| primary.clone()))
            .unwrap_or_else(|| self.name.clone());
        let groups: Vec<String> = match (&self.groups, current) {
            (Some(desired), Some((_, before))) if self.append => {
                let mut all: BTreeSet<String> = before.iter().cloned().collect();
                all.extend(desired.iter().filter(|g| **g != group).cloned());
                all.into_iter().collect()
            }
            (Some(desired), _) => desired.iter().filter(|g| **g != group).cloned().collect(),
            (None, Some((_, before))) => before.clone(),
            (None, None) => Vec::new(),
        };
        let home = self
            .home
            .clone()
            .or_else(|| entry.map(|e| e.home.clone()))
            .unwrap_or_else(|| format!("/home/{}", self.name));
        let shell = self
            .shell
            .clone()
            .or_else(|| entry.map(|e| e.shell.clone()))
            .unwrap_or_default();
        let comment = self
            .comment
            .clone()
            .or_else(|| entry.map(|e| e.gecos.clone()))
            .unwrap_or_default();
        format_fields(&uid, &group, &groups, &home, &shell, &comment)
    }
}

fn describe_entry(entry: &PasswdEntry, primary: &str, groups: &[String]) -> String {
    format_fields(
        &entry.uid.to_string(),
        primary,
        groups,
        &entry.home,
        &entry.shell,
        &entry.gecos,
    )
}

fn format_fields(
    uid: &str,
    group: &str,
    groups: &[String],
    home: &str,
    shell: &str,
    comment: &str,
) -> String {
    let mut sorted = groups.to_vec();
    sorted.sort();
    format!(
        "uid: {uid}\ngroup: {group}\ngroups: {}\nhome: {home}\nshell: {shell}\ncomment: {comment}\n",
        sorted.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Predictions;
    use serde_json::json;

    const HASH: &str = "$y$j9T$abcdefghijklmnopqrstu.$4O2Lx9dJf9QYmRr1TzR8mGq3uCKUBMJb2Q8aF0b8Xw/";
    const OTHER_HASH: &str =
        "$y$j9T$zyxwvutsrqponmlkjihgf.$Pj8mQ0rX1y5aXn1c2b3d4e5f6g7h8i9j0k1l2m3n4o5";

    fn user(args: Value) -> User {
        User::from_args(&serde_json::from_value(args).unwrap()).unwrap()
    }

    fn plan_with(
        user: &User,
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
            stdout: stdout.to_string(),
            ..ExecOutput::default()
        };
        user.plan(&probe, &host)
    }

    fn plan(user: &User, stdout: &str) -> Plan {
        plan_with(user, stdout, false, &Predictions::default()).unwrap()
    }

    /// Probe output of an existing `deploy` user as Debian 12 prints it.
    fn existing(shadow: Option<&str>, home: &str, missing: &str) -> String {
        let mut out = String::from(
            "==> passwd <==\ndeploy:x:1001:1001:Deploy User,,,:/home/deploy:/bin/bash\n\
             ==> primary <==\ndeploy\n\
             ==> groups <==\ndeploy sudo docker\n",
        );
        if let Some(shadow) = shadow {
            out.push_str(&format!("==> shadow <==\n{shadow}\n"));
        }
        out.push_str(&format!("==> home <==\n{home}\n"));
        out.push_str(&format!("==> missing-groups <==\n{missing}"));
        out.push_str("==> own-group <==\npresent\n");
        out
    }

    const ABSENT_USER: &str = "==> passwd <==\nvf-absent\n==> primary <==\nvf-absent\n==> groups <==\nvf-absent\n==> home <==\nabsent\n==> own-group <==\nabsent\n";

    fn summaries(plan: &Plan) -> Vec<&str> {
        plan.changes.iter().map(|c| c.summary.as_str()).collect()
    }

    #[test]
    fn modify_plans_follow_probe() {
        // (arguments, probe output, expected summaries, commands expected in the apply script)
        let cases: Vec<(Value, String, Vec<&str>, Vec<&str>)> = vec![
            (
                json!({"name": "deploy", "shell": "/bin/bash", "groups": ["sudo", "docker"]}),
                existing(None, "present", ""),
                vec![],
                vec![],
            ),
            (
                json!({"name": "deploy", "shell": "/bin/zsh"}),
                existing(None, "present", ""),
                vec!["change shell of `deploy` from `/bin/bash` to `/bin/zsh`"],
                vec!["usermod -s /bin/zsh deploy"],
            ),
            (
                json!({"name": "deploy", "groups": "sudo", "append": false}),
                existing(None, "present", ""),
                vec!["remove `deploy` from group `docker`"],
                vec!["usermod -G sudo deploy"],
            ),
            (
                json!({"name": "deploy", "groups": ["www-data"], "append": true}),
                existing(None, "present", ""),
                vec!["add `deploy` to group `www-data`"],
                vec!["usermod -a -G www-data deploy"],
            ),
            (
                json!({"name": "deploy", "groups": ["sudo", "deploy"], "append": true}),
                existing(None, "present", ""),
                vec![],
                vec![],
            ),
            (
                json!({"name": "deploy", "groups": ""}),
                existing(None, "present", ""),
                vec!["remove `deploy` from group `docker`, `sudo`"],
                vec!["usermod -G '' deploy"],
            ),
            (
                json!({"name": "deploy", "uid": 2000, "group": "users", "comment": "Deploy"}),
                existing(None, "present", ""),
                vec![
                    "change uid of `deploy` from 1001 to 2000",
                    "change primary group of `deploy` from `deploy` to `users`",
                    "change comment of `deploy` from `Deploy User,,,` to `Deploy`",
                ],
                vec!["usermod -u 2000 -g users -c Deploy deploy"],
            ),
            (
                json!({"name": "deploy", "group": "1001"}),
                existing(None, "present", ""),
                vec![],
                vec![],
            ),
            (
                json!({"name": "deploy", "home": "/srv/deploy", "move_home": true}),
                existing(None, "absent", ""),
                vec!["change home of `deploy` from `/home/deploy` to `/srv/deploy` and move its files"],
                vec!["usermod -d /srv/deploy -m deploy"],
            ),
            (
                json!({"name": "deploy"}),
                existing(None, "absent", ""),
                vec!["create home folder `/home/deploy`"],
                vec!["mkhomedir_helper deploy 0022 /etc/skel"],
            ),
            (
                json!({"name": "deploy", "create_home": false}),
                existing(None, "absent", ""),
                vec![],
                vec![],
            ),
            (
                json!({"name": "deploy", "password": HASH}),
                existing(Some(HASH), "present", ""),
                vec![],
                vec![],
            ),
            (
                json!({"name": "deploy", "password": HASH}),
                existing(Some(OTHER_HASH), "present", ""),
                vec!["password changed"],
                vec!["| chpasswd -e"],
            ),
            (
                json!({"name": "deploy", "password": HASH, "update_password": "on_create"}),
                existing(Some(OTHER_HASH), "present", ""),
                vec![],
                vec![],
            ),
            (
                json!({"name": "deploy", "state": "absent", "remove": true, "force": true}),
                existing(None, "present", ""),
                vec!["remove user `deploy` (uid 1001) and its home `/home/deploy`"],
                vec!["userdel -f -r deploy"],
            ),
        ];
        for (args, stdout, expected, commands) in cases {
            let plan = plan(&user(args.clone()), &stdout);
            assert_eq!(summaries(&plan), expected, "args {args}");
            match &plan.apply {
                None => {
                    assert!(commands.is_empty(), "args {args}: no apply script");
                    assert!(plan.reason.is_some(), "args {args}");
                }
                Some(apply) => {
                    for command in &commands {
                        assert!(apply.contains(command), "args {args}: {apply}");
                    }
                    assert_eq!(sh_syntax_error(apply), None, "args {args}");
                }
            }
        }
    }

    #[test]
    fn create_builds_useradd() {
        let user = user(json!({
            "name": "deploy", "uid": 1500, "groups": "sudo,docker", "shell": "/bin/bash",
            "comment": "Deploy user", "system": true, "password": HASH
        }));
        let plan = plan(&user, ABSENT_USER);
        assert_eq!(
            summaries(&plan),
            vec!["create user `deploy` with a password"]
        );
        let apply = plan.apply.clone().unwrap();
        assert!(
            apply.contains(
                "useradd -u 1500 -G sudo,docker -c Deploy' user' -s /bin/bash -m -r deploy"
            ),
            "{apply}"
        );
        assert!(apply.contains("chpasswd -e"), "{apply}");
        assert!(plan.predicts.users.contains("deploy"));
        assert_eq!(sh_syntax_error(&apply), None);
    }

    #[test]
    fn create_beside_same_named_group() {
        let probe = ABSENT_USER.replace("==> own-group <==\nabsent", "==> own-group <==\npresent");
        let plan = plan(&user(json!({"name": "deploy"})), &probe);
        let apply = plan.apply.unwrap();
        assert!(apply.contains("useradd -N -m deploy"), "{apply}");
    }

    #[test]
    fn password_never_leaves_apply_script() {
        let user = user(json!({"name": "deploy", "password": HASH}));
        for stdout in [
            existing(Some(OTHER_HASH), "present", ""),
            ABSENT_USER.to_string(),
        ] {
            let plan = plan(&user, &stdout);
            let summaries_and_diffs = format!("{:?} {:?}", plan.changes, plan.reason);
            assert!(!summaries_and_diffs.contains(HASH), "{summaries_and_diffs}");
            assert!(
                !summaries_and_diffs.contains(OTHER_HASH),
                "{summaries_and_diffs}"
            );
            let result = Value::Object(plan.result.clone()).to_string();
            assert!(!result.contains(HASH), "{result}");
            assert!(!result.contains(OTHER_HASH), "{result}");
        }
        assert!(!format!("{user:?}").contains(HASH));
    }

    #[test]
    fn unreadable_shadow_asks_for_become() {
        let user = user(json!({"name": "deploy", "password": HASH}));
        let error = plan_with(
            &user,
            &existing(Some("vf-unreadable"), "present", ""),
            false,
            &Predictions::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("`become: true`"), "{error}");
    }

    #[test]
    fn missing_group_fails_unless_predicted() {
        let user = user(json!({"name": "deploy", "groups": ["docker", "sudo"]}));
        let stdout = existing(None, "present", "docker\n");
        let error = plan_with(&user, &stdout, false, &Predictions::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "group `docker` does not exist; create it first with the `group` module"
        );

        let mut predicted = Predictions::default();
        predicted.groups.insert("docker".into());
        let plan = plan_with(&user, &stdout, true, &predicted).unwrap();
        assert!(!plan.changed(), "{:?}", plan.changes);
    }

    #[test]
    fn diff_shows_fields_not_password() {
        let user = user(json!({"name": "deploy", "shell": "/bin/sh", "password": HASH}));
        let plan = plan(&user, &existing(Some(OTHER_HASH), "present", ""));
        let diff = plan.changes[0].diff.clone().unwrap();
        assert_eq!(diff.header, "user deploy");
        assert!(
            diff.before.contains("shell: /bin/bash\n"),
            "{}",
            diff.before
        );
        assert!(diff.after.contains("shell: /bin/sh\n"), "{}", diff.after);
        assert!(!diff.after.contains("$y$"), "{}", diff.after);
    }

    #[test]
    fn finish_registers_assigned_ids() {
        let user = user(json!({"name": "deploy"}));
        let plan = plan(&user, ABSENT_USER);
        let output = ExecOutput {
            stdout: "==> passwd <==\ndeploy:x:1003:1003::/home/deploy:/bin/sh\n".into(),
            ..ExecOutput::default()
        };
        let result = user.finish(&plan, &output).unwrap();
        assert_eq!(result.get("uid"), Some(&json!(1003)));
        assert_eq!(result.get("group"), Some(&json!(1003)));
        assert_eq!(result.get("home"), Some(&json!("/home/deploy")));
        assert_eq!(result.get("state"), Some(&json!("present")));
    }

    #[test]
    fn invalid_arguments_are_rejected() {
        for (args, fragment) in [
            (
                json!({"name": "deploy", "expires": 1700000000}),
                "argument `expires`",
            ),
            (
                json!({"name": "deploy", "generate_ssh_key": true}),
                "argument `generate_ssh_key`",
            ),
            (
                json!({"name": "deploy", "home": "relative"}),
                "argument `home`",
            ),
            (
                json!({"name": "deploy", "shell": "/bin/sh:x"}),
                "argument `shell`",
            ),
            (
                json!({"name": "deploy", "password": "a:b"}),
                "argument `password`",
            ),
            (
                json!({"name": "deploy", "update_password": "sometimes"}),
                "argument `update_password`",
            ),
            (
                json!({"name": "deploy", "non_unique": true}),
                "argument `non_unique`",
            ),
            (json!({"name": "bad name"}), "invalid name"),
            (json!({}), "argument `user`"),
        ] {
            let error = User::from_args(&serde_json::from_value(args.clone()).unwrap())
                .err()
                .unwrap_or_else(|| panic!("accepted {args}"));
            assert!(error.to_string().contains(fragment), "{args}: {error}");
        }
    }

    #[test]
    fn probe_runs_against_local_accounts() {
        // Reading root's entry is harmless and exercises the whole probe on this machine.
        let user =
            user(json!({"name": "root", "groups": ["root", "no-such-group-vf"], "home": "/root"}));
        let probe = user.probe().unwrap();
        assert_eq!(sh_syntax_error(&probe), None);
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&probe)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let probed = parse_probe(&ExecOutput {
            stdout,
            ..ExecOutput::default()
        })
        .unwrap();
        assert_eq!(probed.passwd.as_ref().map(|e| e.uid), Some(0));
        assert_eq!(probed.primary_group.as_deref(), Some("root"));
        assert_eq!(probed.missing_groups, vec!["no-such-group-vf".to_string()]);
        assert!(probed.home_exists);
    }

    #[test]
    fn probe_reports_missing_user() {
        let user = user(json!({"name": "no-such-user-vf", "password": HASH}));
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(user.probe().unwrap())
            .output()
            .unwrap();
        let probed = parse_probe(&ExecOutput {
            stdout: String::from_utf8(output.stdout).unwrap(),
            ..ExecOutput::default()
        })
        .unwrap();
        assert_eq!(probed.passwd, None);
        assert_eq!(probed.primary_group, None);
        assert!(probed.groups.is_empty());
        assert!(probed.shadow.is_none());
        assert!(!probed.shadow_unreadable);
        assert!(!probed.home_exists);
    }

    fn sh_syntax_error(script: &str) -> Option<String> {
        let output = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        if output.status.success() {
            None
        } else {
            Some(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}
