//! Shell snippets shared by modules: quoting, probing paths, atomic file writes.

use serde_json::{Map, Value};

use super::{Change, Diff, ModuleError, Param, ParamKind};

/// Quotes `word` for a POSIX shell. Every value placed in a remote script goes through here.
pub fn quote(word: &str) -> String {
    let bytes: Vec<u8> = shell_quote::Sh::quote_vec(word);
    String::from_utf8(bytes).unwrap_or_else(|_| format!("'{}'", word.replace('\'', r"'\''")))
}

/// Owner, group and mode to set on a written file; `None` leaves that attribute alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileAttrs {
    pub owner: Option<String>,
    pub group: Option<String>,
    /// An octal (`0644`) or symbolic (`u=rw,g=r,o=r`) mode, as `chmod` takes it.
    pub mode: Option<String>,
}

/// Returns a script that writes `content` to `path` atomically.
///
/// The content travels base64-encoded inside the script, so one round trip carries
/// both. It goes to a temporary file in the target folder (so the rename stays on
/// one filesystem), gets its owner and mode, is checked by `validate` (with `%s`
/// replaced by the temporary path) when given, and only then replaces `path`. With
/// `backup`, the old file is copied to `path.<epoch>~` first and its name printed on
/// the line `backup=PATH`. A failed validation removes the temporary file and exits
/// with status 3 leaving `path` untouched.
pub fn atomic_write_script(
    path: &str,
    content: &[u8],
    attrs: &FileAttrs,
    validate: Option<&str>,
    backup: bool,
) -> String {
    use base64::Engine as _;

    let encoded = base64::engine::general_purpose::STANDARD.encode(content);
    let mut fill = String::from("base64 -d > \"$vf_tmp\" <<'VPSFORGE_CONTENT_END'\n");
    fill.push_str(&base64_lines(&encoded));
    fill.push('\n');
    fill.push_str("VPSFORGE_CONTENT_END\n");
    replace_through_temp_script(path, &fill, attrs, validate, backup)
}

/// Returns a script that copies the host file `source` to `path` atomically, with
/// the same temporary file, attributes, validation and backup as [`atomic_write_script`].
pub fn atomic_copy_script(
    source: &str,
    path: &str,
    attrs: &FileAttrs,
    validate: Option<&str>,
    backup: bool,
) -> String {
    let fill = format!("cat -- {} > \"$vf_tmp\"\n", quote(source));
    replace_through_temp_script(path, &fill, attrs, validate, backup)
}

/// Wraps `fill`, a snippet that writes the new content to `$vf_tmp`, in the steps
/// that give the temporary file its attributes, validate it and rename it over `path`.
fn replace_through_temp_script(
    path: &str,
    fill: &str,
    attrs: &FileAttrs,
    validate: Option<&str>,
    backup: bool,
) -> String {
    let target = quote(path);
    let mut script = String::new();
    script.push_str("set -e\n");
    script.push_str(&format!("vf_target={target}\n"));
    script.push_str("vf_dir=$(dirname -- \"$vf_target\")\n");
    script.push_str("vf_tmp=$(mktemp \"$vf_dir/.vpsforge.XXXXXXXX\")\n");
    script.push_str("trap 'rm -f \"$vf_tmp\"' EXIT\n");

    script.push_str(fill);
    // Keep the current attributes of an existing file unless the task sets them.
    script.push_str("if [ -e \"$vf_target\" ]; then chown --reference=\"$vf_target\" \"$vf_tmp\" 2>/dev/null || true; chmod --reference=\"$vf_target\" \"$vf_tmp\"; else chmod 0644 \"$vf_tmp\"; fi\n");
    if let Some(owner) = &attrs.owner {
        script.push_str(&format!("chown {} \"$vf_tmp\"\n", quote(owner)));
    }
    if let Some(group) = &attrs.group {
        script.push_str(&format!("chgrp {} \"$vf_tmp\"\n", quote(group)));
    }
    if let Some(mode) = &attrs.mode {
        script.push_str(&format!("chmod {} \"$vf_tmp\"\n", quote(mode)));
    }
    if let Some(command) = validate {
        let command = command.replace("%s", "\"$vf_tmp\"");
        script.push_str(&format!(
            "if ! ( {command} ) >&2; then echo 'validation command failed, the file was not changed' >&2; exit 3; fi\n"
        ));
    }
    if backup {
        script.push_str("if [ -f \"$vf_target\" ]; then vf_backup=\"$vf_target.$(date +%s)~\"; cp -p -- \"$vf_target\" \"$vf_backup\"; echo \"backup=$vf_backup\"; fi\n");
    }
    script.push_str("mv -f -- \"$vf_tmp\" \"$vf_target\"\n");
    script.push_str("trap - EXIT\n");
    script
}

fn base64_lines(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 + 1);
    for (i, ch) in encoded.chars().enumerate() {
        if i > 0 && i % 76 == 0 {
            out.push('\n');
        }
        out.push(ch);
    }
    out
}

/// Parses `key=value` lines, as probe scripts print them. Later keys win; other lines are ignored.
pub fn parse_key_values(output: &str) -> std::collections::BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.to_string()))
        .collect()
}

/// Splits probe output into sections that start with a line `==> NAME <==` (as `tail`
/// prints them), so one probe script can report several things.
pub fn split_sections(output: &str) -> Vec<(String, String)> {
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in output.split_inclusive('\n') {
        let trimmed = line.trim_end_matches('\n');
        if let Some(name) = trimmed
            .strip_prefix("==> ")
            .and_then(|rest| rest.strip_suffix(" <=="))
        {
            sections.push((name.to_string(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
        }
    }
    sections
}

/// Returns a shell line that prints the `==> NAME <==` header of a section.
pub fn section_header(name: &str) -> String {
    format!("printf '%s\\n' {}\n", quote(&format!("==> {name} <==")))
}

/// Maximum size in bytes of a file whose content the copy probe returns, so that
/// diffs need no second round trip.
pub const CONTENT_LIMIT: u64 = 1024 * 1024;

/// The options of a path probe script.
#[derive(Debug, Clone, Copy)]
pub struct PathProbe {
    /// Whether a symbolic link is reported as its target (`stat -L`) or as itself.
    pub follow: bool,
    /// Whether regular files get their SHA-1 and SHA-256 checksums.
    pub checksums: bool,
    /// Regular files up to this size in bytes get their content; 0 skips content of
    /// non-empty files.
    pub content_limit: u64,
}

impl PathProbe {
    /// Returns shell lines that print the state of the path in the shell variable
    /// `var` as `key=value` lines, which [`parse_path_state`] reads. A missing path
    /// prints `kind=absent` instead of an error.
    pub fn script(&self, var: &str) -> String {
        let path = format!("\"${var}\"");
        let format = "kind=%F\\nuid=%u\\ngid=%g\\nowner=%U\\ngroup=%G\\nmode=%a\\nsize=%s\\nmtime=%Y\\ninode=%d:%i\\n";
        let follow = if self.follow { "-L " } else { "" };
        let regular = if self.follow {
            format!("[ -f {path} ] && [ -r {path} ]")
        } else {
            format!("[ -f {path} ] && [ ! -L {path} ] && [ -r {path} ]")
        };

        let mut script = String::new();
        script.push_str(&format!(
            "if [ -e {path} ]; then stat {follow}--printf='{format}' -- {path}\n"
        ));
        script.push_str(&format!(
            "elif [ -L {path} ]; then stat --printf='{format}' -- {path}\n"
        ));
        script.push_str("else echo kind=absent\nfi\n");

        script.push_str(&format!(
            "if [ -L {path} ]; then printf 'link_target=%s\\n' \"$(readlink -- {path})\"; fi\n"
        ));
        script.push_str(&format!(
            "if [ -L {path} ]; then printf 'real_path=%s\\n' \"$(readlink -f -- {path})\"; fi\n"
        ));
        if self.checksums {
            script.push_str(&format!(
                "if {regular}; then printf 'sha1=%s\\nsha256=%s\\n' \"$(sha1sum < {path} | cut -d' ' -f1)\" \"$(sha256sum < {path} | cut -d' ' -f1)\"; fi\n"
            ));
        }
        script.push_str(&format!(
            "if {regular} && [ \"$(stat -L -c %s -- {path})\" -le {} ]; then printf 'content=%s\\n' \"$(base64 -w0 < {path})\"; fi\n",
            // `test` compares signed 64-bit numbers, so a larger limit would be an error.
            self.content_limit.min(i64::MAX as u64)
        ));
        script
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PathKind {
    #[default]
    Absent,
    File,
    Directory,
    Link,
    /// A socket, fifo or device, with `stat`'s name for it.
    Other(String),
}

/// The state of one path, as a path probe reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathState {
    pub kind: PathKind,
    pub uid: u32,
    pub gid: u32,
    /// The owner's name, or `UNKNOWN` when the uid has none.
    pub owner: String,
    pub group: String,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    pub size: u64,
    /// Modification time in seconds since the epoch.
    pub mtime: i64,
    /// Device and inode number as `DEV:INODE`, to recognise hard links.
    pub inode: String,
    /// The target of a symbolic link, as `readlink` prints it.
    pub link_target: Option<String>,
    /// The canonical path of a symbolic link's final target.
    pub real_path: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    /// The content of a regular file within the probe's size limit.
    pub content: Option<Vec<u8>>,
}

impl PathState {
    pub fn exists(&self) -> bool {
        self.kind != PathKind::Absent
    }

    /// Returns the mode as Ansible prints it, such as `0644`.
    pub fn mode_string(&self) -> String {
        format_mode(self.mode)
    }
}

/// Parses the output of [`PathProbe::script`].
pub fn parse_path_state(output: &str) -> Result<PathState, ModuleError> {
    use base64::Engine as _;

    let values = parse_key_values(output);
    let kind = match values.get("kind").map(String::as_str) {
        Some("absent") => PathKind::Absent,
        Some("regular file") | Some("regular empty file") => PathKind::File,
        Some("directory") => PathKind::Directory,
        Some("symbolic link") => PathKind::Link,
        Some(other) => PathKind::Other(other.to_string()),
        None => {
            return Err(ModuleError::Probe(format!(
            "the path probe printed no `kind` line, which means `stat` failed on the host: `{}`",
            output.trim()
        )))
        }
    };
    if kind == PathKind::Absent {
        return Ok(PathState::default());
    }

    let number = |key: &str| -> Result<u64, ModuleError> {
        let text = values.get(key).map(String::as_str).unwrap_or("");
        text.trim().parse::<u64>().map_err(|_| {
            ModuleError::Probe(format!(
                "the path probe printed `{key}={text}`, which is not a number"
            ))
        })
    };
    let mode_text = values.get("mode").map(String::as_str).unwrap_or("");
    let mode = u32::from_str_radix(mode_text.trim(), 8).map_err(|_| {
        ModuleError::Probe(format!(
            "the path probe printed `mode={mode_text}`, which is not an octal mode"
        ))
    })?;
    let content = match values.get("content") {
        Some(encoded) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|error| {
                    ModuleError::Probe(format!(
                        "the path probe printed invalid base64 content: {error}"
                    ))
                })?,
        ),
        None => None,
    };

    Ok(PathState {
        kind,
        uid: number("uid")? as u32,
        gid: number("gid")? as u32,
        owner: values.get("owner").cloned().unwrap_or_default(),
        group: values.get("group").cloned().unwrap_or_default(),
        mode,
        size: number("size")?,
        mtime: values
            .get("mtime")
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or_default(),
        inode: values.get("inode").cloned().unwrap_or_default(),
        link_target: values.get("link_target").cloned(),
        real_path: values.get("real_path").cloned(),
        sha1: values.get("sha1").cloned(),
        sha256: values.get("sha256").cloned(),
        content,
    })
}

/// Returns the section named `name` of a probe output, or an error naming it.
pub fn section<'a>(sections: &'a [(String, String)], name: &str) -> Result<&'a str, ModuleError> {
    sections
        .iter()
        .find(|(section_name, _)| section_name == name)
        .map(|(_, body)| body.as_str())
        .ok_or_else(|| {
            ModuleError::Probe(format!(
                "the probe output has no `{name}` section, which means the probe script failed on the host"
            ))
        })
}

/// Formats permission bits as Ansible prints them: `0644`, `1777`.
pub fn format_mode(mode: u32) -> String {
    format!("{mode:04o}")
}

/// Reads the `mode` argument as text: a string as given, an integer as its octal
/// digits (YAML 1.1 reads `0644` as the integer 420, which Ansible takes as bits).
/// The mode is checked here so that a bad mode fails before the host is contacted.
pub fn opt_mode(args: &super::Args, name: &str) -> Result<Option<String>, ModuleError> {
    let text = match args.get(name) {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Number(number)) => match number.as_u64() {
            Some(bits) => format!("{bits:o}"),
            None => {
                return Err(ModuleError::InvalidArgument(format!(
                    "argument `{name}` must be an octal string such as \"0644\" or a symbolic mode such as \"u=rw,g=r,o=r\", not `{number}`"
                )))
            }
        },
        Some(serde_json::Value::String(text)) => text.trim().to_string(),
        Some(other) => {
            return Err(ModuleError::InvalidArgument(format!(
                "argument `{name}` must be a mode string, not {}",
                super::args::json_kind(other)
            )))
        }
    };
    resolve_mode(&text, 0, false).map_err(|reason| {
        ModuleError::InvalidArgument(format!("argument `{name}` is invalid: {reason}"))
    })?;
    Ok(Some(text))
}

/// Computes the permission bits that `chmod SPEC` gives a path whose bits are
/// `current`. `SPEC` is octal (`0644`) or symbolic (`u=rw,g=r,o=r`, `a+X`, `g=u`).
/// As Ansible does, a symbolic clause without a user class applies to all classes
/// and ignores the umask.
pub fn resolve_mode(spec: &str, current: u32, is_dir: bool) -> Result<u32, String> {
    if spec.is_empty() {
        return Err("the mode is empty".to_string());
    }
    if spec.chars().all(|c| c.is_ascii_digit()) {
        return match u32::from_str_radix(spec, 8) {
            Ok(bits) if bits <= 0o7777 => Ok(bits),
            _ => Err(format!(
                "`{spec}` is not an octal mode between 0000 and 7777"
            )),
        };
    }

    let mut mode = current & 0o7777;
    for clause in spec.split(',') {
        let invalid =
            || format!("`{clause}` is not a symbolic mode clause such as `u=rw` or `g+x`");
        let operator_at = clause.find(['+', '-', '=']).ok_or_else(invalid)?;
        let who = &clause[..operator_at];
        if !who.chars().all(|c| "ugoa".contains(c)) {
            return Err(invalid());
        }
        let classes: Vec<char> = if who.is_empty() || who.contains('a') {
            vec!['u', 'g', 'o']
        } else {
            who.chars().collect()
        };

        let mut rest = &clause[operator_at..];
        while let Some(operator) = rest.chars().next() {
            let perms_end = rest[1..]
                .find(['+', '-', '='])
                .map_or(rest.len(), |at| at + 1);
            let perms = &rest[1..perms_end];
            rest = &rest[perms_end..];

            let mut bits = 0;
            let mut cleared = 0;
            for class in &classes {
                let shift = class_shift(*class);
                cleared |= 0o7 << shift;
                match class {
                    'u' if !is_dir => cleared |= 0o4000,
                    'g' if !is_dir => cleared |= 0o2000,
                    'o' => cleared |= 0o1000,
                    _ => {}
                }
                if let Some(source) = perms.chars().next().filter(|c| "ugo".contains(*c)) {
                    if perms.len() != 1 {
                        return Err(invalid());
                    }
                    bits |= ((mode >> class_shift(source)) & 0o7) << shift;
                    continue;
                }
                for perm in perms.chars() {
                    bits |= match perm {
                        'r' => 0o4 << shift,
                        'w' => 0o2 << shift,
                        'x' => 0o1 << shift,
                        'X' if is_dir || current & 0o111 != 0 => 0o1 << shift,
                        'X' => 0,
                        's' if *class == 'u' => 0o4000,
                        's' if *class == 'g' => 0o2000,
                        's' => 0,
                        't' if *class == 'o' => 0o1000,
                        't' => 0,
                        _ => return Err(invalid()),
                    };
                }
            }
            match operator {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                _ => mode = (mode & !cleared) | bits,
            }
        }
    }
    Ok(mode)
}

fn class_shift(class: char) -> u32 {
    match class {
        'u' => 6,
        'g' => 3,
        _ => 0,
    }
}

/// Rewrites a symbolic mode so that `chmod` applies clauses without a user class to
/// all classes regardless of the umask, as [`resolve_mode`] computes them.
pub fn chmod_spec(spec: &str) -> String {
    spec.split(',')
        .map(|clause| {
            if clause.starts_with(['+', '-', '=']) {
                format!("a{clause}")
            } else {
                clause.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The owner, group and mode changes that bring an existing path to `attrs`, with
/// the script lines that make them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttrPlan {
    pub changes: Vec<Change>,
    pub script: String,
}

/// Compares `attrs` with the probed `state` of `path`. The mode of a symbolic link
/// is left alone because Linux ignores it, and its owner is changed with `chown -h`.
pub fn plan_attrs(
    path: &str,
    attrs: &FileAttrs,
    state: &PathState,
) -> Result<AttrPlan, ModuleError> {
    let mut plan = AttrPlan::default();
    let is_link = state.kind == PathKind::Link;
    let no_follow = if is_link { "-h " } else { "" };

    if let Some(owner) = &attrs.owner {
        if *owner != state.owner && *owner != state.uid.to_string() {
            plan.changes.push(Change {
                summary: format!("owner of `{path}` {} -> {owner}", state.owner),
                diff: None,
            });
            plan.script.push_str(&format!(
                "chown {no_follow}{} -- {}\n",
                quote(owner),
                quote(path)
            ));
        }
    }
    if let Some(group) = &attrs.group {
        if *group != state.group && *group != state.gid.to_string() {
            plan.changes.push(Change {
                summary: format!("group of `{path}` {} -> {group}", state.group),
                diff: None,
            });
            plan.script.push_str(&format!(
                "chgrp {no_follow}{} -- {}\n",
                quote(group),
                quote(path)
            ));
        }
    }
    if let (Some(spec), false) = (&attrs.mode, is_link) {
        let wanted = resolve_mode(spec, state.mode, state.kind == PathKind::Directory).map_err(
            |reason| ModuleError::InvalidArgument(format!("argument `mode` is invalid: {reason}")),
        )?;
        if wanted != state.mode & 0o7777 {
            plan.changes.push(Change {
                summary: format!(
                    "mode of `{path}` {} -> {}",
                    format_mode(state.mode),
                    format_mode(wanted)
                ),
                diff: None,
            });
            plan.script.push_str(&format!(
                "chmod {} -- {}\n",
                format_mode(wanted),
                quote(path)
            ));
        }
    }
    Ok(plan)
}

/// Returns the attributes to give a file that is written anew: the mode resolved to
/// octal against the current mode, or against 0644 for a new file, as written files
/// start with that mode.
pub fn resolved_write_attrs(
    attrs: &FileAttrs,
    current: Option<&PathState>,
) -> Result<FileAttrs, ModuleError> {
    let base = current
        .filter(|state| state.exists())
        .map_or(0o644, |state| state.mode);
    let mode = match &attrs.mode {
        Some(spec) => Some(format_mode(resolve_mode(spec, base, false).map_err(
            |reason| ModuleError::InvalidArgument(format!("argument `mode` is invalid: {reason}")),
        )?)),
        None => None,
    };
    Ok(FileAttrs {
        owner: attrs.owner.clone(),
        group: attrs.group.clone(),
        mode,
    })
}

/// Returns a before/after diff of a file, or `None` when either side is not text
/// (invalid UTF-8 or a NUL byte) or larger than [`CONTENT_LIMIT`], where a summary
/// line is all that is shown. An absent file has empty `before` text.
pub fn content_diff(header: &str, before: Option<&[u8]>, after: &[u8]) -> Option<Diff> {
    let as_text = |bytes: &[u8]| -> Option<String> {
        if bytes.len() as u64 > CONTENT_LIMIT || bytes.contains(&0) {
            return None;
        }
        String::from_utf8(bytes.to_vec()).ok()
    };
    Some(Diff {
        header: header.to_string(),
        before: as_text(before.unwrap_or_default())?,
        after: as_text(after)?,
    })
}

pub fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest as _;
    hex::encode(sha1::Sha1::digest(bytes))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Parses the `backup=PATH` line that a write script prints after a backup.
pub fn backup_file(output: &str) -> Option<String> {
    output
        .lines()
        .find_map(|line| line.strip_prefix("backup="))
        .map(String::from)
}

/// Reads the shared file attribute arguments `owner`, `group` and `mode`.
pub fn file_attrs(args: &super::Args) -> Result<FileAttrs, ModuleError> {
    Ok(FileAttrs {
        owner: super::args::opt_str(args, "owner")?,
        group: super::args::opt_str(args, "group")?,
        mode: opt_mode(args, "mode")?,
    })
}

/// Checks a `validate` argument: Ansible requires the `%s` placeholder.
pub fn opt_validate(args: &super::Args) -> Result<Option<String>, ModuleError> {
    let validate = super::args::opt_str(args, "validate")?;
    if let Some(command) = &validate {
        if !command.contains("%s") {
            return Err(ModuleError::InvalidArgument(format!(
                "argument `validate` must contain `%s` for the path of the file to check, not `{command}`"
            )));
        }
    }
    Ok(validate)
}

/// The `owner`, `group` and `mode` arguments that every file module takes, and the
/// SELinux ones, which are accepted and ignored because Debian and Ubuntu do not
/// enable SELinux by default.
pub const FILE_ATTR_PARAMS: [Param; 7] = [
    Param::new("owner", ParamKind::Str),
    Param::new("group", ParamKind::Str),
    Param::new("mode", ParamKind::Mode),
    Param::new("seuser", ParamKind::Str),
    Param::new("serole", ParamKind::Str),
    Param::new("setype", ParamKind::Str),
    Param::new("selevel", ParamKind::Str),
];

/// Adds the registered fields Ansible returns for a path: `owner`, `group`, `mode`,
/// `uid`, `gid`, `size` and `state`.
pub fn insert_path_fields(result: &mut Map<String, Value>, state: &PathState) {
    let kind = match &state.kind {
        PathKind::Absent => "absent",
        PathKind::File => "file",
        PathKind::Directory => "directory",
        PathKind::Link => "link",
        PathKind::Other(_) => "file",
    };
    result.insert("state".into(), Value::from(kind));
    if state.exists() {
        result.insert("owner".into(), Value::from(state.owner.clone()));
        result.insert("group".into(), Value::from(state.group.clone()));
        result.insert("uid".into(), Value::from(state.uid));
        result.insert("gid".into(), Value::from(state.gid));
        result.insert("mode".into(), Value::from(state.mode_string()));
        result.insert("size".into(), Value::from(state.size));
    }
}

/// Returns a probe script for a file that a module edits on the controller: its
/// state with the full content, whatever its size, and whether its folder exists.
pub fn edit_probe(path: &str) -> String {
    let probe = PathProbe {
        follow: true,
        checksums: true,
        content_limit: u64::MAX,
    };
    let mut script = format!("vf_path={}\n", quote(path));
    script.push_str(&section_header("file"));
    script.push_str(&probe.script("vf_path"));
    script.push_str(&section_header("parent"));
    script.push_str("if [ -d \"$(dirname -- \"$vf_path\")\" ]; then echo parent=1; fi\n");
    script
}

/// Parses the output of [`edit_probe`]: the file's state and whether its folder exists.
pub fn parse_edit_probe(output: &str) -> Result<(PathState, bool), ModuleError> {
    let sections = split_sections(output);
    let state = parse_path_state(section(&sections, "file")?)?;
    let parent_exists = parse_key_values(section(&sections, "parent")?).contains_key("parent");
    Ok((state, parent_exists))
}

/// Returns a script that writes the edited `content` to `path`, but first checks
/// that the file still has the content it had when it was probed, so that an edit
/// made in between is not lost. A changed file makes the script exit with status 4.
/// A symbolic link is written through to its target, as Ansible does.
pub fn guarded_edit_script(
    path: &str,
    probed: &PathState,
    content: &[u8],
    attrs: &FileAttrs,
    validate: Option<&str>,
    backup: bool,
) -> Result<String, ModuleError> {
    let quoted = quote(path);
    let message = quote(&format!(
        "`{path}` changed after it was read, so the edit was not written: run the task again"
    ));
    let mut script = String::from("set -e\n");
    match &probed.sha256 {
        Some(sha256) => script.push_str(&format!(
            "if [ \"$(sha256sum < {quoted} | cut -d' ' -f1)\" != {} ]; then echo {message} >&2; exit 4; fi\n",
            quote(sha256)
        )),
        None => {
            script.push_str(&format!(
                "if [ -e {quoted} ]; then echo {message} >&2; exit 4; fi\n"
            ));
            script.push_str(&format!("mkdir -p -- \"$(dirname -- {quoted})\"\n"));
        }
    }
    let write_path = probed.real_path.as_deref().unwrap_or(path);
    let attrs = resolved_write_attrs(attrs, Some(probed))?;
    script.push_str(&atomic_write_script(
        write_path, content, &attrs, validate, backup,
    ));
    Ok(script)
}

/// The content an edit starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum BaseContent {
    /// The file's content on the host.
    Existing(Vec<u8>),
    /// The content an earlier task would write, in check mode.
    Predicted(Vec<u8>),
    /// An earlier task would create the file with content unknown in check mode.
    PredictedUnknown,
    Missing,
}

/// Finds the content an edit of `path` starts from: the probed content, or in check
/// mode the content an earlier task would write.
pub fn base_content(
    path: &str,
    state: &PathState,
    host: &super::HostView,
) -> Result<BaseContent, ModuleError> {
    // In check mode an earlier task may have planned to rewrite the file: plan against that.
    if host.check_mode {
        match host.predicted.files.get(path) {
            Some(Some(content)) => return Ok(BaseContent::Predicted(content.clone())),
            Some(None) => return Ok(BaseContent::PredictedUnknown),
            None => {}
        }
    }
    if state.exists() {
        return state
            .content
            .clone()
            .map(BaseContent::Existing)
            .ok_or_else(|| {
                ModuleError::Probe(format!(
                    "the probe did not return the content of `{path}`: check that it is readable"
                ))
            });
    }
    if !host.check_mode {
        return Ok(BaseContent::Missing);
    }
    Ok(match host.predicted.files.get(path) {
        Some(Some(content)) => BaseContent::Predicted(content.clone()),
        Some(None) => BaseContent::PredictedUnknown,
        None => BaseContent::Missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_handles_specials() {
        for word in [
            "plain",
            "with space",
            "it's",
            "new\nline",
            "$HOME",
            "",
            "a\"b",
            "`x`",
        ] {
            let script = format!("printf %s {}", quote(word));
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8(output.stdout).unwrap(),
                word,
                "word {word:?}"
            );
        }
    }

    #[test]
    fn sections_round_trip_through_sh() {
        let script = format!(
            "{}echo one\n{}printf 'two\\nthree\\n'\n",
            section_header("a"),
            section_header("b c")
        );
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let sections = split_sections(&String::from_utf8(output.stdout).unwrap());
        assert_eq!(
            sections,
            vec![
                ("a".to_string(), "one\n".to_string()),
                ("b c".to_string(), "two\nthree\n".to_string())
            ]
        );
    }

    #[test]
    fn key_values_keep_equals_in_value() {
        let map = parse_key_values("a=1\nb=x=y\nnoise\n");
        assert_eq!(map.get("a").map(String::as_str), Some("1"));
        assert_eq!(map.get("b").map(String::as_str), Some("x=y"));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn atomic_write_creates_file_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a file's name");
        let attrs = FileAttrs {
            mode: Some("0600".into()),
            ..FileAttrs::default()
        };
        let script = atomic_write_script(
            path.to_str().unwrap(),
            b"hello\nworld\n",
            &attrs,
            None,
            false,
        );
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read(&path).unwrap(), b"hello\nworld\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temporary file left behind"
        );
    }

    #[test]
    fn atomic_write_keeps_old_file_when_validation_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf");
        std::fs::write(&path, "old\n").unwrap();
        let script = atomic_write_script(
            path.to_str().unwrap(),
            b"new\n",
            &FileAttrs::default(),
            Some("grep -q old %s"),
            false,
        );
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temporary file left behind"
        );
    }

    #[test]
    fn resolve_mode_matches_chmod() {
        for (spec, current, is_dir, expected) in [
            ("0644", 0o600, false, 0o644),
            ("644", 0o600, false, 0o644),
            ("1777", 0o755, true, 0o1777),
            ("u=rw,g=r,o=r", 0o777, false, 0o644),
            ("u+x", 0o644, false, 0o744),
            ("go-w", 0o666, false, 0o644),
            ("a+X", 0o644, false, 0o644),
            ("a+X", 0o744, false, 0o755),
            ("a+X", 0o700, true, 0o711),
            ("u=rwX,g=rX,o=", 0o666, true, 0o750),
            ("=r", 0o777, false, 0o444),
            ("g=u", 0o640, false, 0o660),
            ("u+s", 0o755, false, 0o4755),
            ("+t", 0o777, true, 0o1777),
            ("u=rw", 0o4755, false, 0o655),
            ("u=rwx", 0o4755, true, 0o4755),
            ("u+w-x", 0o555, false, 0o655),
        ] {
            assert_eq!(
                resolve_mode(spec, current, is_dir),
                Ok(expected),
                "{spec} on {current:o} (directory {is_dir})"
            );
        }
    }

    #[test]
    fn resolve_mode_rejects_invalid() {
        for spec in ["", "0999", "77777", "u=banana", "z+x", "u", "u=rwg"] {
            assert!(resolve_mode(spec, 0o644, false).is_err(), "{spec}");
        }
    }

    #[test]
    fn resolve_mode_agrees_with_chmod_binary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        for spec in ["u=rw,g=r,o=r", "a+X", "go-rwx", "u+x,g=u", "o=t"] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o754)).unwrap();
            let status = std::process::Command::new("chmod")
                .arg(chmod_spec(spec))
                .arg(&path)
                .status()
                .unwrap();
            assert!(status.success(), "{spec}");
            let actual = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
            assert_eq!(resolve_mode(spec, 0o754, false), Ok(actual), "{spec}");
        }
    }

    #[test]
    fn chmod_spec_adds_all_class() {
        assert_eq!(chmod_spec("=r,u+w"), "a=r,u+w");
        assert_eq!(chmod_spec("0644"), "0644");
    }

    #[test]
    fn path_probe_reports_file_and_link() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, b"bin\x00ary\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("data", &link).unwrap();
        let probe = PathProbe {
            follow: false,
            checksums: true,
            content_limit: CONTENT_LIMIT,
        };
        let script = format!(
            "vf_a={}\nvf_b={}\nvf_c={}\n{}{}{}{}{}{}",
            quote(file.to_str().unwrap()),
            quote(link.to_str().unwrap()),
            quote(dir.path().join("missing").to_str().unwrap()),
            section_header("a"),
            probe.script("vf_a"),
            section_header("b"),
            probe.script("vf_b"),
            section_header("c"),
            probe.script("vf_c"),
        );
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let sections = split_sections(&String::from_utf8(output.stdout).unwrap());

        let data = parse_path_state(section(&sections, "a").unwrap()).unwrap();
        assert_eq!(data.kind, PathKind::File);
        assert_eq!(data.size, 8);
        assert_eq!(data.content.as_deref(), Some(&b"bin\x00ary\n"[..]));
        assert_eq!(data.sha256, Some(sha256_hex(b"bin\x00ary\n")));
        assert_eq!(data.sha1, Some(sha1_hex(b"bin\x00ary\n")));

        let link_state = parse_path_state(section(&sections, "b").unwrap()).unwrap();
        assert_eq!(link_state.kind, PathKind::Link);
        assert_eq!(link_state.link_target.as_deref(), Some("data"));
        assert_eq!(link_state.content, None);

        let missing = parse_path_state(section(&sections, "c").unwrap()).unwrap();
        assert_eq!(missing, PathState::default());
    }

    #[test]
    fn path_state_rejects_garbage() {
        assert!(parse_path_state("stat: cannot stat\n").is_err());
        assert!(parse_path_state("kind=directory\nmode=rwx\n").is_err());
    }

    #[test]
    fn content_diff_skips_binary() {
        let diff = content_diff("/etc/motd", None, b"hi\n").unwrap();
        assert_eq!(diff.before, "");
        assert_eq!(diff.after, "hi\n");
        assert_eq!(content_diff("/x", Some(b"a\x00"), b"b"), None);
        assert_eq!(content_diff("/x", Some(b"a"), &[0xff, 0xfe]), None);
    }

    #[test]
    fn attrs_plan_compares_names_and_ids() {
        let state = PathState {
            kind: PathKind::File,
            uid: 0,
            gid: 33,
            owner: "root".into(),
            group: "www-data".into(),
            mode: 0o640,
            ..PathState::default()
        };
        let same = FileAttrs {
            owner: Some("0".into()),
            group: Some("www-data".into()),
            mode: Some("u=rw,g=r".into()),
        };
        assert_eq!(
            plan_attrs("/srv/f", &same, &state).unwrap(),
            AttrPlan::default()
        );

        let other = FileAttrs {
            owner: Some("app".into()),
            group: Some("33".into()),
            mode: Some("0600".into()),
        };
        let plan = plan_attrs("/srv/f", &other, &state).unwrap();
        let summaries: Vec<&str> = plan.changes.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(
            summaries,
            [
                "owner of `/srv/f` root -> app",
                "mode of `/srv/f` 0640 -> 0600"
            ]
        );
        assert_eq!(plan.script, "chown app -- /srv/f\nchmod 0600 -- /srv/f\n");
    }

    #[test]
    fn registry_finds_file_modules() {
        for name in [
            "copy",
            "template",
            "file",
            "lineinfile",
            "blockinfile",
            "stat",
        ] {
            let spec = super::super::find(name);
            assert!(spec.is_some(), "`{name}` is not registered");
            let qualified = format!("ansible.builtin.{name}");
            assert!(
                super::super::find(&qualified).is_some(),
                "`{qualified}` is not registered"
            );
        }
    }
}

/// Helpers for the module tests: building an action from JSON arguments, planning
/// against probe output and running scripts with `sh`.
#[cfg(test)]
pub mod test_support {
    use super::super::{
        Action, Args, BuildContext, ExecOutput, HostView, ModuleSpec, Plan, Predictions,
    };
    use super::ModuleError;
    use serde_json::Value;

    pub fn build_with(
        spec: &ModuleSpec,
        args: Value,
        search_paths: &[std::path::PathBuf],
    ) -> Result<Box<dyn Action>, ModuleError> {
        let args: Args = serde_json::from_value(args).expect("test arguments are a mapping");
        let render = |path: &std::path::Path| {
            std::fs::read_to_string(path)
                .map(|text| text.replace("{{ name }}", "world"))
                .map_err(|error| ModuleError::Failed(error.to_string()))
        };
        let context = BuildContext {
            search_paths,
            render_template: &render,
            facts: &Value::Null,
        };
        (spec.build)(&args, &context)
    }

    pub fn build(spec: &ModuleSpec, args: Value) -> Result<Box<dyn Action>, ModuleError> {
        build_with(spec, args, &[])
    }

    pub fn plan_with(
        action: &dyn Action,
        stdout: &str,
        check_mode: bool,
        predicted: &Predictions,
    ) -> Result<Plan, ModuleError> {
        let host = HostView {
            check_mode,
            facts: &Value::Null,
            predicted,
        };
        let output = ExecOutput {
            exit_code: 0,
            stdout: stdout.to_string(),
            stderr: String::new(),
        };
        action.plan(&output, &host)
    }

    pub fn plan(action: &dyn Action, stdout: &str) -> Plan {
        plan_with(action, stdout, false, &Predictions::default()).expect("plan succeeds")
    }

    /// Runs `script` with `sh` and returns its output; the exit status is in `exit_code`.
    pub fn run_sh(script: &str) -> ExecOutput {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh runs");
        ExecOutput {
            exit_code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts that `sh -n` accepts `script`.
    pub fn assert_syntax(script: &str) {
        let output = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh runs");
        assert!(
            output.status.success(),
            "sh -n rejects the script: {}\n{script}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Probes, plans and applies `action` for real, then probes and plans again,
    /// returning both plans.
    pub fn apply_twice(action: &dyn Action) -> (Plan, Plan) {
        let first = plan(action, &run_sh(&action.probe().expect("a probe")).stdout);
        if let Some(script) = &first.apply {
            let output = run_sh(script);
            assert_eq!(
                output.exit_code, 0,
                "apply failed: {}\n{script}",
                output.stderr
            );
        }
        let second = plan(action, &run_sh(&action.probe().expect("a probe")).stdout);
        (first, second)
    }
}
