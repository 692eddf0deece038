//! `ufw`: the Uncomplicated Firewall's state, default policies, logging and rules.
//!
//! Rules are compared with the `### tuple ###` comments that ufw writes into
//! `/etc/ufw/user.rules` and `/etc/ufw/user6.rules`: they hold every field of a
//! rule in a fixed order, unlike the human-oriented `ufw status` table. The
//! default policies and the IPv6 switch come from `/etc/default/ufw`, and the
//! log level from `/etc/ufw/ufw.conf`. Changes are made with `ufw` commands, in
//! Ansible's order: state, default policy, rule, logging.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value};

use super::args::{bool_or, choice, opt_int, opt_str};
use super::common::{parse_key_values, quote, section_header, split_sections};
use super::{
    Action, Args, BuildContext, Change, Diff, ExecOutput, HostView, ModuleError, ModuleKind,
    ModuleSpec, Param, ParamKind, Plan,
};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "ufw",
    aliases: &["community.general.ufw", "community.general.system.ufw"],
    params: &[
        Param::new("state", ParamKind::Str).choices(STATES),
        Param::new("default", ParamKind::Str)
            .aliases(&["policy"])
            .choices(POLICIES),
        Param::new("logging", ParamKind::Str).choices(LOG_LEVELS),
        Param::new("direction", ParamKind::Str).choices(DIRECTIONS),
        Param::new("rule", ParamKind::Str).choices(ACTIONS),
        Param::new("port", ParamKind::Str).aliases(&["to_port"]),
        Param::new("proto", ParamKind::Str)
            .aliases(&["protocol"])
            .choices(PROTOCOLS),
        Param::new("from_ip", ParamKind::Str).aliases(&["from", "src"]),
        Param::new("from_port", ParamKind::Str),
        Param::new("to_ip", ParamKind::Str).aliases(&["dest", "to"]),
        Param::new("interface", ParamKind::Str).aliases(&["if"]),
        Param::new("interface_in", ParamKind::Str).aliases(&["if_in"]),
        Param::new("interface_out", ParamKind::Str).aliases(&["if_out"]),
        Param::new("route", ParamKind::Bool),
        Param::new("delete", ParamKind::Bool),
        Param::new("insert", ParamKind::Int),
        Param::new("insert_relative_to", ParamKind::Str).choices(&[
            "zero",
            "first-ipv4",
            "last-ipv4",
            "first-ipv6",
            "last-ipv6",
        ]),
        Param::new("log", ParamKind::Bool),
        Param::new("comment", ParamKind::Str),
        Param::new("name", ParamKind::Str).aliases(&["app"]),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build,
};

const STATES: &[&str] = &["enabled", "disabled", "reloaded", "reset"];
const POLICIES: &[&str] = &["allow", "deny", "reject"];
const LOG_LEVELS: &[&str] = &["on", "off", "low", "medium", "high", "full"];
const DIRECTIONS: &[&str] = &["in", "incoming", "out", "outgoing", "routed"];
const ACTIONS: &[&str] = &["allow", "deny", "limit", "reject"];
const PROTOCOLS: &[&str] = &[
    "any", "tcp", "udp", "ipv6", "esp", "ah", "gre", "igmp", "vrrp",
];

const V4_ANY: &str = "0.0.0.0/0";
const V6_ANY: &str = "::/0";

#[derive(Debug, Clone, PartialEq)]
pub struct Ufw {
    state: Option<String>,
    /// Policy and direction (`incoming`, `outgoing` or `routed`).
    default: Option<(String, String)>,
    logging: Option<String>,
    rule: Option<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    action: String,
    log: bool,
    route: bool,
    delete: bool,
    insert: Option<u32>,
    /// `in` or `out` when the task sets a direction.
    direction: Option<&'static str>,
    interface: Option<String>,
    interface_in: Option<String>,
    interface_out: Option<String>,
    proto: String,
    from: Address,
    from_port: Option<String>,
    to: Address,
    to_port: Option<String>,
    app: Option<String>,
    comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Address {
    Any,
    /// A host or network as ufw stores it: a bare address for a single host.
    V4(String),
    V6(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

pub fn build(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    Ok(Box::new(Ufw::from_args(args)?))
}

fn invalid(message: impl Into<String>) -> ModuleError {
    ModuleError::InvalidArgument(message.into())
}

/// Returns the first of `names` that is set, for arguments with aliases.
fn opt_any(args: &Args, names: &[&str]) -> Result<Option<String>, ModuleError> {
    for name in names {
        if let Some(value) = opt_str(args, name)? {
            if !value.is_empty() {
                return Ok(Some(value));
            }
        }
    }
    Ok(None)
}

fn opt_choice(
    args: &Args,
    names: &[&str],
    choices: &[&str],
) -> Result<Option<String>, ModuleError> {
    for name in names {
        if opt_str(args, name)?.is_some() {
            return choice(args, name, choices, "").map(Some);
        }
    }
    Ok(None)
}

impl Ufw {
    pub fn from_args(args: &Args) -> Result<Ufw, ModuleError> {
        let state = opt_choice(args, &["state"], STATES)?;
        let policy = opt_choice(args, &["default", "policy"], POLICIES)?;
        let logging = opt_choice(args, &["logging"], LOG_LEVELS)?;
        let direction = opt_choice(args, &["direction"], DIRECTIONS)?;
        let action = opt_choice(args, &["rule"], ACTIONS)?;

        let default = match policy {
            None => None,
            Some(policy) => {
                let direction = match direction.as_deref() {
                    None | Some("incoming") => "incoming",
                    Some("outgoing") => "outgoing",
                    Some("routed") => "routed",
                    Some(other) => {
                        return Err(invalid(format!(
                            "argument `direction` must be `incoming`, `outgoing` or `routed` with `default`, not `{other}`"
                        )))
                    }
                };
                Some((policy, direction.to_string()))
            }
        };

        let rule = match action {
            Some(action) => Some(Rule::from_args(
                args,
                action,
                direction.as_deref(),
                default.is_some(),
            )?),
            None => {
                for name in [
                    "port",
                    "to_port",
                    "from_ip",
                    "from",
                    "src",
                    "from_port",
                    "to_ip",
                    "dest",
                    "to",
                    "interface",
                    "if",
                    "interface_in",
                    "interface_out",
                    "name",
                    "app",
                    "comment",
                    "insert",
                ] {
                    if args.get(name).is_some_and(|v| !v.is_null()) {
                        return Err(invalid(format!(
                            "argument `{name}` describes a rule and requires `rule` (`allow`, `deny`, `limit` or `reject`)"
                        )));
                    }
                }
                if bool_or(args, "delete", false)? {
                    return Err(invalid(
                        "argument `delete` requires `rule` to name the rule to delete",
                    ));
                }
                None
            }
        };

        if state.is_none() && default.is_none() && logging.is_none() && rule.is_none() {
            return Err(invalid(
                "one of `state`, `default`, `logging` or `rule` is required",
            ));
        }
        if logging.is_some()
            && (opt_str(args, "name")?.is_some() || opt_str(args, "proto")?.is_some())
        {
            return Err(invalid(
                "arguments `logging`, `name` and `proto` are mutually exclusive; move the rule to its own task",
            ));
        }
        Ok(Ufw {
            state,
            default,
            logging,
            rule,
        })
    }
}

impl Rule {
    fn from_args(
        args: &Args,
        action: String,
        direction: Option<&str>,
        has_default: bool,
    ) -> Result<Rule, ModuleError> {
        let direction = match direction {
            None => None,
            Some("in") | Some("incoming") => Some("in"),
            Some("out") | Some("outgoing") => Some("out"),
            // With `default`, the direction names the policy's chain, not the rule's.
            Some(_) if has_default => None,
            Some(other) => {
                return Err(invalid(format!(
                    "argument `direction` must be `in` or `out` for a rule, not `{other}`; use `route: true` for routed traffic"
                )))
            }
        };
        let interface = opt_any(args, &["interface", "if"])?;
        let interface_in = opt_any(args, &["interface_in", "if_in"])?;
        let interface_out = opt_any(args, &["interface_out", "if_out"])?;
        if interface.is_some() && (interface_in.is_some() || interface_out.is_some()) {
            return Err(invalid(
                "argument `interface` cannot be combined with `interface_in` or `interface_out`; keep one form",
            ));
        }
        let route = bool_or(args, "route", false)?;
        if !route && interface_in.is_some() && interface_out.is_some() {
            return Err(invalid(
                "arguments `interface_in` and `interface_out` together require `route: true`",
            ));
        }
        for (name, value) in [
            ("interface", &interface),
            ("interface_in", &interface_in),
            ("interface_out", &interface_out),
        ] {
            if let Some(value) = value {
                if value.is_empty()
                    || !value.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@' | '+')
                    })
                {
                    return Err(invalid(format!(
                        "argument `{name}` must be an interface name such as `eth0`, not `{value}`"
                    )));
                }
            }
        }

        let proto_given = opt_any(args, &["proto", "protocol"])?;
        let proto = match &proto_given {
            Some(_) => {
                opt_choice(args, &["proto", "protocol"], PROTOCOLS)?.unwrap_or_else(|| "any".into())
            }
            None => "any".into(),
        };
        let app = opt_any(args, &["name", "app"])?;
        let to_port = opt_any(args, &["port", "to_port"])?;
        let from_port = opt_any(args, &["from_port"])?;
        if app.is_some() && (proto_given.is_some() || to_port.is_some()) {
            return Err(invalid(
                "argument `name` takes the ports and protocol from the application profile; remove `port` and `proto`",
            ));
        }
        for (name, port) in [("port", &to_port), ("from_port", &from_port)] {
            if let Some(port) = port {
                validate_port(name, port, &proto)?;
            }
        }

        let from = parse_address("from_ip", opt_any(args, &["from_ip", "from", "src"])?)?;
        let to = parse_address("to_ip", opt_any(args, &["to_ip", "dest", "to"])?)?;
        if matches!(
            (&from, &to),
            (Address::V4(_), Address::V6(_)) | (Address::V6(_), Address::V4(_))
        ) {
            return Err(invalid(
                "arguments `from_ip` and `to_ip` must be of the same IP version",
            ));
        }

        let insert = match opt_int(args, "insert")? {
            None => None,
            Some(n) if n >= 1 && n <= u32::MAX as i64 => Some(n as u32),
            Some(n) => {
                return Err(invalid(format!(
                    "argument `insert` must be a rule number of 1 or more, not `{n}`"
                )))
            }
        };
        let relative = opt_str(args, "insert_relative_to")?;
        if relative.as_deref().is_some_and(|r| r != "zero") {
            return Err(invalid(
                "argument `insert_relative_to` is supported only as `zero`; give `insert` as an absolute rule number",
            ));
        }
        let comment = opt_str(args, "comment")?;
        if let Some(comment) = &comment {
            if comment.contains(['\n', '\r', '\'']) {
                return Err(invalid(
                    "argument `comment` must not contain a line break or `'`, which ufw rejects",
                ));
            }
        }

        Ok(Rule {
            action,
            log: bool_or(args, "log", false)?,
            route,
            delete: bool_or(args, "delete", false)?,
            insert,
            direction,
            interface,
            interface_in,
            interface_out,
            proto,
            from,
            from_port,
            to,
            to_port,
            app,
            comment,
        })
    }

    /// Returns the families that ufw writes this rule to, given the IPv6 switch.
    fn families(&self, ipv6: bool) -> Result<Vec<Family>, ModuleError> {
        match (&self.from, &self.to) {
            (Address::V4(_), _) | (_, Address::V4(_)) => Ok(vec![Family::V4]),
            (Address::V6(_), _) | (_, Address::V6(_)) if !ipv6 => Err(ModuleError::Failed(
                "the rule uses an IPv6 address but IPv6 is off in `/etc/default/ufw`; set `IPV6=yes` there first".into(),
            )),
            (Address::V6(_), _) | (_, Address::V6(_)) => Ok(vec![Family::V6]),
            _ if ipv6 => Ok(vec![Family::V4, Family::V6]),
            _ => Ok(vec![Family::V4]),
        }
    }

    /// Builds the tuple that ufw would store for this rule in one family.
    fn tuple(
        &self,
        family: Family,
        services: &BTreeMap<String, String>,
    ) -> Result<Tuple, ModuleError> {
        let any = match family {
            Family::V4 => V4_ANY,
            Family::V6 => V6_ANY,
        };
        let address = |address: &Address| match address {
            Address::Any => any.to_string(),
            Address::V4(a) | Address::V6(a) => a.clone(),
        };
        let mut action = self.action.clone();
        if self.route {
            action = format!("route:{action}");
        }
        if self.log {
            action.push_str("_log");
        }
        let direction = self.direction.unwrap_or("in");
        let iface = match (&self.interface, &self.interface_in, &self.interface_out) {
            (Some(interface), _, _) => format!("{direction}_{interface}"),
            (None, Some(i), Some(o)) => format!("in_{i}!out_{o}"),
            (None, Some(i), None) => format!("in_{i}"),
            (None, None, Some(o)) => format!("out_{o}"),
            (None, None, None) => direction.to_string(),
        };
        Ok(Tuple {
            action,
            proto: self.proto.clone(),
            dport: resolve_ports(self.to_port.as_deref(), services)?,
            dst: address(&self.to),
            sport: resolve_ports(self.from_port.as_deref(), services)?,
            src: address(&self.from),
            dapp: self.app.as_ref().map(|a| a.replace(' ', "%20")),
            sapp: None,
            iface,
            comment: self.comment.as_ref().map(|c| hex::encode(c.as_bytes())),
        })
    }

    /// Returns the service names (`ssh`, `https`) used as ports, which the probe resolves.
    fn service_names(&self) -> Vec<String> {
        let mut names: Vec<String> = [&self.to_port, &self.from_port]
            .into_iter()
            .flatten()
            .flat_map(|port| port.split(','))
            .filter(|part| !part.starts_with(|c: char| c.is_ascii_digit()))
            .map(String::from)
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Returns the rule in ufw's command syntax, the words after `ufw` and any `delete` or `insert`.
    fn words(&self) -> Vec<String> {
        let mut words = Vec::new();
        words.push(self.action.clone());
        if let Some(interface) = &self.interface {
            words.push(self.direction.unwrap_or("in").to_string());
            words.push("on".into());
            words.push(quote(interface));
        } else if self.interface_in.is_none() && self.interface_out.is_none() {
            if let Some(direction) = self.direction {
                words.push(direction.to_string());
            }
        }
        if let Some(interface) = &self.interface_in {
            words.extend(["in".to_string(), "on".to_string(), quote(interface)]);
        }
        if let Some(interface) = &self.interface_out {
            words.extend(["out".to_string(), "on".to_string(), quote(interface)]);
        }

        if self.log {
            words.push("log".into());
        }
        if self.proto != "any" {
            words.push("proto".into());
            words.push(self.proto.clone());
        }

        words.push("from".into());
        words.push(address_word(&self.from));
        if let Some(port) = &self.from_port {
            words.push("port".into());
            words.push(quote(port));
        }

        words.push("to".into());
        words.push(address_word(&self.to));
        if let Some(port) = &self.to_port {
            words.push("port".into());
            words.push(quote(port));
        }
        if let Some(app) = &self.app {
            words.push("app".into());
            words.push(quote(app));
        }
        words
    }

    /// Returns the `ufw` command for this rule, with its `insert` position only when `insert` is true.
    fn command(&self, insert: bool) -> String {
        let mut words = vec!["ufw".to_string()];
        if self.route {
            words.push("route".into());
        }
        if self.delete {
            words.push("delete".into());
        } else if let Some(position) = self.insert.filter(|_| insert) {
            words.push("insert".into());
            words.push(position.to_string());
        }
        words.extend(self.words());
        if let (Some(comment), false) = (&self.comment, self.delete) {
            words.push("comment".into());
            words.push(quote(comment));
        }
        words.join(" ")
    }

    /// Formats the rule as the summaries show it, as in `limit proto tcp from any to any port 22`.
    fn display(&self) -> String {
        let mut text = String::new();
        if self.route {
            text.push_str("route ");
        }
        text.push_str(&self.words().join(" "));
        text
    }
}

fn address_word(address: &Address) -> String {
    match address {
        Address::Any => "any".into(),
        Address::V4(a) | Address::V6(a) => a.clone(),
    }
}

fn validate_port(name: &str, port: &str, proto: &str) -> Result<(), ModuleError> {
    let valid_number = |text: &str| text.parse::<u16>().is_ok_and(|n| n > 0);
    let mut multiple = false;
    for part in port.split(',') {
        let valid = match part.split_once(':') {
            Some((low, high)) => {
                multiple = true;
                valid_number(low)
                    && valid_number(high)
                    && low.parse::<u16>().ok() < high.parse::<u16>().ok()
            }
            None => valid_number(part) || is_service_name(part),
        };
        if !valid {
            return Err(invalid(format!(
                "argument `{name}` must be a port number, a service name, a range such as `60000:61000` or a comma-separated list of them, not `{port}`"
            )));
        }
    }
    if port.contains(',') {
        multiple = true;
    }
    if multiple && proto != "tcp" && proto != "udp" {
        return Err(invalid(format!(
            "argument `{name}` with a range or list requires `proto: tcp` or `proto: udp`, as ufw does"
        )));
    }
    Ok(())
}

/// Returns whether `part` is a service name as ufw accepts it: a word character, then
/// word characters or `-`.
fn is_service_name(part: &str) -> bool {
    let mut chars = part.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && part.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Turns a port argument into the form ufw stores: service names replaced by their
/// numbers from the host's `/etc/services`, and the list sorted by port number.
fn resolve_ports(
    port: Option<&str>,
    services: &BTreeMap<String, String>,
) -> Result<String, ModuleError> {
    let Some(port) = port else {
        return Ok("any".into());
    };
    let mut parts: Vec<String> = Vec::new();
    for part in port.split(',') {
        if is_service_name(part) {
            let number = services.get(part).filter(|n| !n.is_empty()).ok_or_else(|| {
                ModuleError::Failed(format!(
                    "port `{part}` is not a service name in the host's `/etc/services`; use the port number"
                ))
            })?;
            parts.push(number.clone());
        } else {
            parts.push(part.to_string());
        }
    }
    let key = |part: &String| -> (u32, u32) {
        let mut numbers = part.split(':').map(|n| n.parse::<u32>().unwrap_or(0));
        (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
    };
    parts.sort_by_key(key);
    Ok(parts.join(","))
}

/// Parses `any`, an address or a network, normalised as ufw stores it.
fn parse_address(name: &str, value: Option<String>) -> Result<Address, ModuleError> {
    let Some(value) = value else {
        return Ok(Address::Any);
    };
    if value == "any" {
        return Ok(Address::Any);
    }
    let error = || {
        invalid(format!(
            "argument `{name}` must be `any`, an IP address or a network such as `10.0.0.0/8`, not `{value}`"
        ))
    };
    let (address, prefix) = match value.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix.parse::<u8>().map_err(|_| error())?)),
        None => (value.as_str(), None),
    };
    match address.parse::<IpAddr>().map_err(|_| error())? {
        IpAddr::V4(v4) => match prefix {
            None | Some(32) => Ok(Address::V4(v4.to_string())),
            Some(bits) if bits < 32 => {
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                let network = Ipv4Addr::from(u32::from(v4) & mask);
                Ok(Address::V4(format!("{network}/{bits}")))
            }
            Some(_) => Err(error()),
        },
        IpAddr::V6(v6) => match prefix {
            None | Some(128) => Ok(Address::V6(v6.to_string())),
            Some(bits) if bits < 128 => {
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                let network = Ipv6Addr::from(u128::from(v6) & mask);
                Ok(Address::V6(format!("{network}/{bits}")))
            }
            Some(_) => Err(error()),
        },
    }
}

/// One `### tuple ###` line: the fields of a rule in the order ufw writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuple {
    action: String,
    proto: String,
    dport: String,
    dst: String,
    sport: String,
    src: String,
    dapp: Option<String>,
    sapp: Option<String>,
    iface: String,
    /// Hex-encoded UTF-8, as ufw stores it.
    comment: Option<String>,
}

impl Tuple {
    pub fn parse(line: &str) -> Option<Tuple> {
        let rest = line.trim().strip_prefix("### tuple ###")?;
        let mut fields: Vec<&str> = rest.split_whitespace().collect();
        let comment = match fields.last() {
            Some(last) if last.starts_with("comment=") => {
                let hex = last.trim_start_matches("comment=").to_string();
                fields.pop();
                Some(hex)
            }
            _ => None,
        };
        let app = |field: &str| (field != "-").then(|| field.to_string());
        match fields.as_slice() {
            [action, proto, dport, dst, sport, src, iface] => Some(Tuple {
                action: action.to_string(),
                proto: proto.to_string(),
                dport: dport.to_string(),
                dst: dst.to_string(),
                sport: sport.to_string(),
                src: src.to_string(),
                dapp: None,
                sapp: None,
                iface: iface.to_string(),
                comment,
            }),
            [action, proto, dport, dst, sport, src, dapp, sapp, iface] => Some(Tuple {
                action: action.to_string(),
                proto: proto.to_string(),
                dport: dport.to_string(),
                dst: dst.to_string(),
                sport: sport.to_string(),
                src: src.to_string(),
                dapp: app(dapp),
                sapp: app(sapp),
                iface: iface.to_string(),
                comment,
            }),
            _ => None,
        }
    }

    fn render(&self) -> String {
        let mut line = format!(
            "### tuple ### {} {} {} {} {} {}",
            self.action, self.proto, self.dport, self.dst, self.sport, self.src
        );
        if self.dapp.is_some() || self.sapp.is_some() {
            line.push_str(&format!(
                " {} {}",
                self.dapp.as_deref().unwrap_or("-"),
                self.sapp.as_deref().unwrap_or("-")
            ));
        }
        line.push(' ');
        line.push_str(&self.iface);
        if let Some(comment) = &self.comment {
            line.push_str(&format!(" comment={comment}"));
        }
        line
    }

    /// Returns whether both tuples name the same traffic, whatever their action, logging and comment.
    /// For application rules the ports and protocol come from the profile and are not compared.
    fn same_traffic(&self, other: &Tuple) -> bool {
        let route = |t: &Tuple| t.action.starts_with("route:");
        let ports_match = if self.dapp.is_some() || other.dapp.is_some() {
            true
        } else {
            self.proto == other.proto && self.dport == other.dport
        };
        route(self) == route(other)
            && ports_match
            && self.dst == other.dst
            && self.sport == other.sport
            && self.src == other.src
            && self.dapp == other.dapp
            && self.sapp == other.sapp
            && self.iface == other.iface
    }

    /// Returns whether `existing` is exactly this desired tuple. A rule given without a
    /// comment does not match one with a comment, because ufw then replaces the rule
    /// and drops the comment.
    fn satisfied_by(&self, existing: &Tuple) -> bool {
        self.same_traffic(existing)
            && self.action == existing.action
            && self.comment == existing.comment
    }
}

/// The firewall as the probe found it.
#[derive(Debug, Clone, PartialEq)]
struct Firewall {
    active: bool,
    ipv6: bool,
    /// Policies for `incoming`, `outgoing` and `routed`, as `allow`, `deny` or `reject`.
    incoming: String,
    outgoing: String,
    routed: String,
    log_level: String,
    rules4: Vec<Tuple>,
    rules6: Vec<Tuple>,
}

impl Firewall {
    /// Returns the state right after `apt-get install ufw` on Debian 12, for check mode.
    fn fresh() -> Firewall {
        Firewall {
            active: false,
            ipv6: true,
            incoming: "deny".into(),
            outgoing: "allow".into(),
            routed: "deny".into(),
            log_level: "low".into(),
            rules4: Vec::new(),
            rules6: Vec::new(),
        }
    }

    fn policy(&self, direction: &str) -> &str {
        match direction {
            "outgoing" => &self.outgoing,
            "routed" => &self.routed,
            _ => &self.incoming,
        }
    }

    fn rules(&self, family: Family) -> &[Tuple] {
        match family {
            Family::V4 => &self.rules4,
            Family::V6 => &self.rules6,
        }
    }

    fn rules_mut(&mut self, family: Family) -> &mut Vec<Tuple> {
        match family {
            Family::V4 => &mut self.rules4,
            Family::V6 => &mut self.rules6,
        }
    }

    fn render_rules(&self) -> String {
        let mut text = String::new();
        for tuple in &self.rules4 {
            text.push_str(&tuple.render());
            text.push('\n');
        }
        for tuple in &self.rules6 {
            text.push_str("(v6) ");
            text.push_str(&tuple.render());
            text.push('\n');
        }
        text
    }
}

fn policy_name(value: &str) -> String {
    match value.trim_matches('"').to_ascii_uppercase().as_str() {
        "ACCEPT" => "allow".into(),
        "REJECT" => "reject".into(),
        _ => "deny".into(),
    }
}

/// Parses the `services` section: service names with their port numbers.
fn parse_services(stdout: &str) -> BTreeMap<String, String> {
    split_sections(stdout)
        .into_iter()
        .find(|(name, _)| name == "services")
        .map(|(_, body)| parse_key_values(&body))
        .unwrap_or_default()
}

#[derive(Debug)]
enum Probed {
    Installed(Firewall),
    Missing,
}

fn parse_probe(output: &ExecOutput) -> Result<Probed, ModuleError> {
    let sections = split_sections(&output.stdout);
    let section = |name: &str| {
        sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, body)| body.as_str())
    };
    let Some(installed) = section("installed") else {
        return Err(ModuleError::Probe(format!(
            "the ufw probe printed no `installed` section: {}",
            output.stderr.trim()
        )));
    };
    if installed.trim() != "yes" {
        return Ok(Probed::Missing);
    }

    let status = section("status").unwrap_or("");
    let active = match status
        .lines()
        .find_map(|l| l.trim().strip_prefix("Status: "))
    {
        Some(state) => state.trim() == "active",
        None => {
            return Err(ModuleError::Probe(format!(
                "`ufw status` failed: {}; run the task with `become: true`",
                status.trim()
            )))
        }
    };
    let defaults = parse_key_values(section("defaults").unwrap_or(""));
    let conf = parse_key_values(section("conf").unwrap_or(""));
    let value = |map: &std::collections::BTreeMap<String, String>, key: &str| {
        map.get(key).map(|v| v.trim().trim_matches('"').to_string())
    };
    let parse_rules = |name: &str| -> Vec<Tuple> {
        section(name)
            .unwrap_or("")
            .lines()
            .filter_map(Tuple::parse)
            .collect()
    };
    Ok(Probed::Installed(Firewall {
        active,
        ipv6: value(&defaults, "IPV6").is_none_or(|v| v.eq_ignore_ascii_case("yes")),
        incoming: policy_name(
            &value(&defaults, "DEFAULT_INPUT_POLICY").unwrap_or_else(|| "DROP".into()),
        ),
        outgoing: policy_name(
            &value(&defaults, "DEFAULT_OUTPUT_POLICY").unwrap_or_else(|| "ACCEPT".into()),
        ),
        routed: policy_name(
            &value(&defaults, "DEFAULT_FORWARD_POLICY").unwrap_or_else(|| "DROP".into()),
        ),
        log_level: value(&conf, "LOGLEVEL").unwrap_or_else(|| "low".into()),
        rules4: parse_rules("user.rules"),
        rules6: parse_rules("user6.rules"),
    }))
}

impl Action for Ufw {
    fn probe(&self) -> Option<String> {
        let mut script = String::new();
        let names = self
            .rule
            .as_ref()
            .map(Rule::service_names)
            .unwrap_or_default();
        if !names.is_empty() {
            let words: Vec<String> = names.iter().map(|name| quote(name)).collect();
            script.push_str(&section_header("services"));
            script.push_str(&format!(
                "for vf_name in {}; do printf '%s=%s\\n' \"$vf_name\" \"$(getent services \"$vf_name\" | awk '{{split($2, a, \"/\"); print a[1]; exit}}')\"; done\n",
                words.join(" ")
            ));
        }

        script.push_str("if command -v ufw >/dev/null 2>&1; then\n");
        script.push_str(&section_header("installed"));
        script.push_str("echo yes\n");
        script.push_str(&section_header("status"));
        // ufw reports `active` when its chains are loaded in the kernel. Asking iptables
        // as ufw does, instead of running `ufw status`, keeps the probe free of Python,
        // which ufw is written in. The rules file is readable by root only, as ufw needs.
        script.push_str(
            "if [ ! -r /etc/ufw/user.rules ]; then echo 'ERROR: You need to be root to run this script'\n\
             elif iptables -L ufw-user-input -n >/dev/null 2>&1; then echo 'Status: active'\n\
             else echo 'Status: inactive'; fi\n",
        );

        script.push_str(&section_header("defaults"));
        script.push_str("cat /etc/default/ufw 2>/dev/null || true\n");
        script.push_str(&section_header("conf"));
        script.push_str("cat /etc/ufw/ufw.conf 2>/dev/null || true\n");

        script.push_str(&section_header("user.rules"));
        script.push_str("grep '^### tuple ###' /etc/ufw/user.rules 2>/dev/null || true\n");
        script.push_str(&section_header("user6.rules"));
        script.push_str("grep '^### tuple ###' /etc/ufw/user6.rules 2>/dev/null || true\n");

        script.push_str("else\n");
        script.push_str(&section_header("installed"));
        script.push_str("echo no\nfi\n");
        Some(script)
    }

    fn plan(&self, probe: &ExecOutput, host: &HostView) -> Result<Plan, ModuleError> {
        let (mut firewall, note) = match parse_probe(probe)? {
            Probed::Installed(firewall) => (firewall, ""),
            Probed::Missing if host.check_mode && host.predicted.packages.contains("ufw") => (
                Firewall::fresh(),
                " (ufw would be installed by an earlier task)",
            ),
            Probed::Missing => {
                return Err(ModuleError::Failed(
                    "the `ufw` command is not installed; install the `ufw` package first".into(),
                ))
            }
        };

        let mut changes: Vec<Change> = Vec::new();
        let mut commands: Vec<String> = Vec::new();
        let mut change = |summary: String, command: String, diff: Option<Diff>| {
            changes.push(Change {
                summary: format!("{summary}{note}"),
                diff,
            });
            commands.push(command);
        };

        if let Some(state) = &self.state {
            match state.as_str() {
                "enabled" if !firewall.active => {
                    change(
                        "enable the firewall".into(),
                        "ufw --force enable".into(),
                        None,
                    );
                    firewall.active = true;
                }
                "disabled" if firewall.active => {
                    change("disable the firewall".into(), "ufw disable".into(), None);
                    firewall.active = false;
                }
                "reloaded" => change("reload the firewall".into(), "ufw reload".into(), None),
                "reset" => {
                    // NOTE: the plan assumes that a reset keeps the default policies and log level,
                    // and empties the rules and disables the firewall.
                    change(
                        "reset the firewall to its installation defaults".into(),
                        "ufw --force reset".into(),
                        None,
                    );
                    firewall.active = false;
                    firewall.rules4.clear();
                    firewall.rules6.clear();
                }
                _ => {}
            }
        }

        if let Some((policy, direction)) = &self.default {
            let current = firewall.policy(direction).to_string();
            if current != *policy {
                change(
                    format!("set the default {direction} policy to `{policy}` (was `{current}`)"),
                    format!("ufw default {policy} {direction}"),
                    None,
                );
            }
        }

        if let Some(rule) = &self.rule {
            let services = parse_services(&probe.stdout);
            let before = firewall.render_rules();
            let families = rule.families(firewall.ipv6)?;
            // ufw rejects an insert position past the last rule, so such a rule is appended.
            // NOTE: the plan inserts at the same position in each family's list. How ufw maps
            // one position onto both the IPv4 and the IPv6 rules is not modelled.
            let insert_fits = families.iter().all(|family| {
                rule.insert
                    .is_some_and(|position| position as usize <= firewall.rules(*family).len())
            });
            let mut effects = Vec::new();
            for family in &families {
                let desired = rule.tuple(*family, &services)?;
                if let Some(effect) = converge_rule(rule, desired, firewall.rules_mut(*family)) {
                    effects.push((effect, *family));
                }
            }

            if let Some((effect, family)) = effects.first() {
                let mut summary = match effect {
                    RuleChange::Added => format!("add rule `{}`", rule.display()),
                    RuleChange::Updated(difference) => {
                        format!("update rule `{}` ({difference})", rule.display())
                    }
                    RuleChange::Deleted => format!("delete rule `{}`", rule.display()),
                };
                if effects.len() < families.len() {
                    summary.push_str(match family {
                        Family::V4 => " for IPv4",
                        Family::V6 => " for IPv6",
                    });
                }
                // ufw skips an insert that meets a rule for the same traffic, so an update
                // runs without the position and replaces the rule where it is.
                let updating = effects
                    .iter()
                    .any(|(effect, _)| matches!(effect, RuleChange::Updated(_)));
                change(
                    summary,
                    rule.command(insert_fits && !updating),
                    Some(Diff {
                        header: "ufw rules".into(),
                        before,
                        after: firewall.render_rules(),
                    }),
                );
            }
        }

        if let Some(level) = &self.logging {
            let current = firewall.log_level.clone();
            let satisfied = match level.as_str() {
                "on" => current != "off",
                other => other == current,
            };
            if !satisfied {
                change(
                    format!("set logging to `{level}` (was `{current}`)"),
                    format!("ufw logging {level}"),
                    None,
                );
            }
        }

        let mut result = Map::new();
        result.insert("commands".into(), Value::from(commands.clone()));
        if changes.is_empty() {
            return Ok(Plan {
                result,
                ..Plan::unchanged(self.unchanged_reason())
            });
        }
        let mut apply = String::from("set -e\n");
        for command in &commands {
            apply.push_str(command);
            apply.push('\n');
        }
        apply.push_str(&section_header("status"));
        apply.push_str("LC_ALL=C ufw status verbose\n");
        Ok(Plan {
            changes,
            apply: Some(apply),
            result,
            ..Plan::default()
        })
    }

    fn finish(&self, plan: &Plan, output: &ExecOutput) -> Result<Map<String, Value>, ModuleError> {
        if output.exit_code != 0 {
            return Err(ModuleError::Failed(format!(
                "a `ufw` command failed with exit status {}: {}",
                output.exit_code,
                output.stderr.trim()
            )));
        }
        let mut result = plan.result.clone();
        let sections = split_sections(&output.stdout);
        if let Some((_, status)) = sections.iter().find(|(name, _)| name == "status") {
            result.insert("msg".into(), Value::from(status.trim_end().to_string()));
        }
        Ok(result)
    }
}

/// The effect of a rule command on one family's tuples.
#[derive(Debug, Clone, PartialEq)]
enum RuleChange {
    Added,
    /// A rule for the same traffic is replaced, and the text describes the difference.
    Updated(String),
    Deleted,
}

/// Applies the rule to one family's tuples as ufw would, and returns the change, if any.
fn converge_rule(rule: &Rule, desired: Tuple, rules: &mut Vec<Tuple>) -> Option<RuleChange> {
    if rule.delete {
        let before = rules.len();
        rules.retain(|t| !(desired.same_traffic(t) && desired.action == t.action));
        return (rules.len() != before).then_some(RuleChange::Deleted);
    }
    if rules.iter().any(|t| desired.satisfied_by(t)) {
        return None;
    }
    if let Some(existing) = rules.iter_mut().find(|t| desired.same_traffic(t)) {
        let difference = if existing.action == desired.action {
            "comment changed".to_string()
        } else {
            format!("was `{}`", existing.action)
        };
        *existing = desired;
        return Some(RuleChange::Updated(difference));
    }
    match rule.insert {
        Some(position) if (position as usize) <= rules.len() => {
            rules.insert(position as usize - 1, desired);
        }
        _ => rules.push(desired),
    }
    Some(RuleChange::Added)
}

impl Ufw {
    fn unchanged_reason(&self) -> String {
        let mut parts = Vec::new();
        if let Some(state) = &self.state {
            parts.push(format!("the firewall is {state}"));
        }
        if let Some((policy, direction)) = &self.default {
            parts.push(format!("the default {direction} policy is `{policy}`"));
        }
        if let Some(rule) = &self.rule {
            if rule.delete {
                parts.push(format!("rule `{}` is absent", rule.display()));
            } else {
                parts.push(format!("rule `{}` is present", rule.display()));
            }
        }
        if let Some(level) = &self.logging {
            parts.push(format!("logging is `{level}`"));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Predictions;
    use serde_json::json;

    fn ufw(args: Value) -> Ufw {
        Ufw::from_args(&serde_json::from_value(args).unwrap()).unwrap()
    }

    fn plan_with(
        ufw: &Ufw,
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
        ufw.plan(&probe, &host)
    }

    fn plan(ufw: &Ufw, stdout: &str) -> Plan {
        plan_with(ufw, stdout, false, &Predictions::default()).unwrap()
    }

    /// `/etc/default/ufw` of Debian 12, trimmed to its settings.
    const DEFAULTS: &str = "IPV6=yes\nDEFAULT_INPUT_POLICY=\"DROP\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\nDEFAULT_FORWARD_POLICY=\"DROP\"\nDEFAULT_APPLICATION_POLICY=\"SKIP\"\nMANAGE_BUILTINS=no\nIPT_SYSCTL=/etc/ufw/sysctl.conf\nIPT_MODULES=\"\"\n";

    const ACTIVE_STATUS: &str = "Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), disabled (routed)\nNew profiles: skip\n\nTo                         Action      From\n--                         ------      ----\n22/tcp                     LIMIT IN    Anywhere\n80/tcp                     ALLOW IN    Anywhere                   # web\n22/tcp (v6)                LIMIT IN    Anywhere (v6)\n80/tcp (v6)                ALLOW IN    Anywhere (v6)              # web\n\n";

    /// Probe output of a host with SSH limited, HTTP allowed with a comment, and one
    /// address range allowed to PostgreSQL, as ufw on Debian 12 writes them.
    fn probe_output(status: &str, defaults: &str) -> String {
        format!(
            "==> installed <==\nyes\n==> status <==\n{status}==> defaults <==\n{defaults}==> conf <==\n# /etc/ufw/ufw.conf\nENABLED=yes\nLOGLEVEL=low\n==> user.rules <==\n### tuple ### limit tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n### tuple ### allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in comment=776562\n### tuple ### allow tcp 5432 0.0.0.0/0 any 10.0.0.0/8 in\n==> user6.rules <==\n### tuple ### limit tcp 22 ::/0 any ::/0 in\n### tuple ### allow tcp 80 ::/0 any ::/0 in comment=776562\n"
        )
    }

    fn active() -> String {
        probe_output(ACTIVE_STATUS, DEFAULTS)
    }

    fn summaries(plan: &Plan) -> Vec<&str> {
        plan.changes.iter().map(|c| c.summary.as_str()).collect()
    }

    #[test]
    fn plans_follow_probe() {
        // (arguments, expected summaries, expected commands)
        let cases: Vec<(Value, Vec<&str>, Vec<&str>)> = vec![
            (
                json!({"rule": "limit", "port": "22", "proto": "tcp"}),
                vec![],
                vec![],
            ),
            (
                json!({"rule": "limit", "port": 22, "proto": "tcp", "from_ip": "any"}),
                vec![],
                vec![],
            ),
            (
                json!({"rule": "allow", "port": "80", "proto": "tcp", "comment": "web"}),
                vec![],
                vec![],
            ),
            (
                json!({"rule": "allow", "port": "80", "proto": "tcp"}),
                vec!["update rule `allow proto tcp from any to any port 80` (comment changed)"],
                vec!["ufw allow proto tcp from any to any port 80"],
            ),
            (
                json!({"rule": "allow", "port": "5432", "proto": "tcp", "src": "10.1.2.3/8"}),
                vec![],
                vec![],
            ),
            (
                json!({"rule": "allow", "port": "443", "proto": "tcp"}),
                vec!["add rule `allow proto tcp from any to any port 443`"],
                vec!["ufw allow proto tcp from any to any port 443"],
            ),
            (
                json!({"rule": "allow", "port": "80", "proto": "tcp", "comment": "http"}),
                vec!["update rule `allow proto tcp from any to any port 80` (comment changed)"],
                vec!["ufw allow proto tcp from any to any port 80 comment http"],
            ),
            (
                json!({"rule": "deny", "port": "22", "proto": "tcp"}),
                vec!["update rule `deny proto tcp from any to any port 22` (was `limit`)"],
                vec!["ufw deny proto tcp from any to any port 22"],
            ),
            (
                json!({"rule": "allow", "port": "5432", "proto": "tcp", "from": "192.168.1.10"}),
                vec!["add rule `allow proto tcp from 192.168.1.10 to any port 5432`"],
                vec!["ufw allow proto tcp from 192.168.1.10 to any port 5432"],
            ),
            (
                json!({"rule": "allow", "port": "60000:61000", "proto": "udp"}),
                vec!["add rule `allow proto udp from any to any port 60000:61000`"],
                vec!["ufw allow proto udp from any to any port 60000:61000"],
            ),
            (
                json!({"rule": "allow", "port": "5432", "proto": "tcp", "src": "10.0.0.0/8", "delete": true}),
                vec!["delete rule `allow proto tcp from 10.0.0.0/8 to any port 5432`"],
                vec!["ufw delete allow proto tcp from 10.0.0.0/8 to any port 5432"],
            ),
            (
                json!({"rule": "allow", "port": "8080", "proto": "tcp", "delete": true}),
                vec![],
                vec![],
            ),
            (
                json!({"rule": "allow", "interface": "wg0", "direction": "in", "insert": 1}),
                vec!["add rule `allow in on wg0 from any to any`"],
                vec!["ufw insert 1 allow in on wg0 from any to any"],
            ),
            (
                json!({"rule": "allow", "route": true, "interface_in": "wg0", "interface_out": "eth0"}),
                vec!["add rule `route allow in on wg0 out on eth0 from any to any`"],
                vec!["ufw route allow in on wg0 out on eth0 from any to any"],
            ),
            (
                json!({"rule": "allow", "name": "OpenSSH"}),
                vec!["add rule `allow from any to any app OpenSSH`"],
                vec!["ufw allow from any to any app OpenSSH"],
            ),
            (json!({"state": "enabled"}), vec![], vec![]),
            (
                json!({"state": "disabled"}),
                vec!["disable the firewall"],
                vec!["ufw disable"],
            ),
            (
                json!({"state": "reloaded"}),
                vec!["reload the firewall"],
                vec!["ufw reload"],
            ),
            (json!({"default": "deny"}), vec![], vec![]),
            (
                json!({"policy": "deny", "direction": "routed"}),
                vec![],
                vec![],
            ),
            (
                json!({"default": "reject", "direction": "incoming"}),
                vec!["set the default incoming policy to `reject` (was `deny`)"],
                vec!["ufw default reject incoming"],
            ),
            (
                json!({"default": "deny", "direction": "outgoing"}),
                vec!["set the default outgoing policy to `deny` (was `allow`)"],
                vec!["ufw default deny outgoing"],
            ),
            (json!({"logging": "on"}), vec![], vec![]),
            (json!({"logging": "low"}), vec![], vec![]),
            (
                json!({"logging": "medium"}),
                vec!["set logging to `medium` (was `low`)"],
                vec!["ufw logging medium"],
            ),
        ];
        for (args, expected, commands) in cases {
            let plan = plan(&ufw(args.clone()), &active());
            assert_eq!(summaries(&plan), expected, "args {args}");
            assert_eq!(
                plan.result.get("commands"),
                Some(&json!(commands)),
                "args {args}"
            );
            match &plan.apply {
                None => assert!(plan.reason.is_some(), "args {args}"),
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
    fn service_names_resolve_through_probe() {
        let rule = ufw(json!({"rule": "limit", "port": "ssh", "proto": "tcp"}));
        let probe = rule.probe().unwrap();
        assert!(probe.contains("getent services"), "{probe}");
        assert_eq!(sh_syntax_error(&probe), None);

        let stdout = format!("==> services <==\nssh=22\n{}", active());
        let plan = plan(&rule, &stdout);
        assert!(!plan.changed(), "{:?}", plan.changes);

        let unknown = ufw(json!({"rule": "allow", "port": "no-such-service", "proto": "tcp"}));
        let stdout = format!("==> services <==\nno-such-service=\n{}", active());
        let error = plan_with(&unknown, &stdout, false, &Predictions::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "port `no-such-service` is not a service name in the host's `/etc/services`; use the port number"
        );
    }

    #[test]
    fn services_probe_reads_etc_services() {
        let rule = ufw(json!({"rule": "allow", "port": "https,ssh", "proto": "tcp"}));
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(rule.probe().unwrap())
            .output()
            .unwrap();
        let services = parse_services(&String::from_utf8(output.stdout).unwrap());
        assert_eq!(services.get("ssh").map(String::as_str), Some("22"));
        assert_eq!(services.get("https").map(String::as_str), Some("443"));
    }

    #[test]
    fn port_lists_compare_sorted() {
        let stdout = active().replace(
            "==> user6.rules <==\n",
            "### tuple ### allow tcp 80,443,8000:8100 0.0.0.0/0 any 0.0.0.0/0 in\n==> user6.rules <==\n### tuple ### allow tcp 80,443,8000:8100 ::/0 any ::/0 in\n",
        );
        let rule = ufw(json!({"rule": "allow", "port": "8000:8100,443,80", "proto": "tcp"}));
        let plan = plan(&rule, &stdout);
        assert!(!plan.changed(), "{:?}", plan.changes);
    }

    #[test]
    fn update_drops_insert_position() {
        let rule = ufw(json!({"rule": "deny", "port": "22", "proto": "tcp", "insert": 1}));
        let plan = plan(&rule, &active());
        assert_eq!(
            plan.result.get("commands"),
            Some(&json!(["ufw deny proto tcp from any to any port 22"]))
        );
    }

    #[test]
    fn insert_past_last_rule_appends() {
        let plan = plan(
            &ufw(json!({"rule": "allow", "port": "443", "proto": "tcp", "insert": 9})),
            &active(),
        );
        let commands = plan.result.get("commands").cloned();
        assert_eq!(
            commands,
            Some(json!(["ufw allow proto tcp from any to any port 443"]))
        );
    }

    #[test]
    fn inactive_firewall_gets_enabled_first() {
        let stdout = probe_output("Status: inactive\n", DEFAULTS);
        let plan = plan(
            &ufw(json!({"state": "enabled", "rule": "allow", "port": "443", "proto": "tcp"})),
            &stdout,
        );
        assert_eq!(
            summaries(&plan),
            vec![
                "enable the firewall",
                "add rule `allow proto tcp from any to any port 443`"
            ]
        );
        let apply = plan.apply.unwrap();
        let enable = apply.find("ufw --force enable").unwrap();
        let allow = apply.find("ufw allow proto tcp").unwrap();
        assert!(enable < allow, "{apply}");
    }

    #[test]
    fn ipv4_only_host_needs_one_tuple() {
        let defaults = DEFAULTS.replace("IPV6=yes", "IPV6=no");
        let stdout = probe_output(ACTIVE_STATUS, &defaults)
            .replace("### tuple ### limit tcp 22 ::/0 any ::/0 in\n", "");
        let plan = plan(
            &ufw(json!({"rule": "limit", "port": "22", "proto": "tcp"})),
            &stdout,
        );
        assert!(!plan.changed(), "{:?}", plan.changes);
    }

    #[test]
    fn missing_v6_tuple_is_added() {
        let stdout = active().replace("### tuple ### limit tcp 22 ::/0 any ::/0 in\n", "");
        let plan = plan(
            &ufw(json!({"rule": "limit", "port": "22", "proto": "tcp"})),
            &stdout,
        );
        assert_eq!(
            summaries(&plan),
            vec!["add rule `limit proto tcp from any to any port 22` for IPv6"]
        );
        let diff = plan.changes[0].diff.clone().unwrap();
        assert!(
            diff.after
                .contains("(v6) ### tuple ### limit tcp 22 ::/0 any ::/0 in\n"),
            "{}",
            diff.after
        );
        assert!(
            !diff.before.contains("(v6) ### tuple ### limit tcp 22"),
            "{}",
            diff.before
        );
    }

    #[test]
    fn ipv6_source_uses_v6_rules_only() {
        let plan = plan(
            &ufw(
                json!({"rule": "allow", "port": "22", "proto": "tcp", "from_ip": "2001:db8::/32"}),
            ),
            &active(),
        );
        let diff = plan.changes[0].diff.clone().unwrap();
        assert!(
            diff.after
                .contains("(v6) ### tuple ### allow tcp 22 ::/0 any 2001:db8::/32 in\n"),
            "{}",
            diff.after
        );
        assert_eq!(diff.after.matches("2001:db8::/32").count(), 1);
    }

    #[test]
    fn missing_ufw_fails_unless_predicted() {
        let stdout = "==> installed <==\nno\n";
        let args = ufw(json!({"state": "enabled"}));
        let error = plan_with(&args, stdout, false, &Predictions::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the `ufw` command is not installed; install the `ufw` package first"
        );
        let mut predicted = Predictions::default();
        predicted.packages.insert("ufw".into());
        let plan = plan_with(&args, stdout, true, &predicted).unwrap();
        assert_eq!(
            summaries(&plan),
            vec!["enable the firewall (ufw would be installed by an earlier task)"]
        );
    }

    #[test]
    fn status_without_root_asks_for_become() {
        let stdout = probe_output("ERROR: You need to be root to run this script\n", DEFAULTS);
        let error = plan_with(
            &ufw(json!({"state": "enabled"})),
            &stdout,
            false,
            &Predictions::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("`become: true`"), "{error}");
    }

    #[test]
    fn tuples_parse_and_render() {
        for line in [
            "### tuple ### allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in comment=776562",
            "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in",
            "### tuple ### route:allow any any 0.0.0.0/0 any 0.0.0.0/0 in_wg0!out_eth0",
            "### tuple ### deny_log udp 53 ::/0 any ::/0 out_eth0",
        ] {
            let tuple = Tuple::parse(line).unwrap_or_else(|| panic!("rejected {line}"));
            assert_eq!(tuple.render(), line);
        }
        assert_eq!(Tuple::parse("### tuple ### allow tcp"), None);
        assert_eq!(
            Tuple::parse("-A ufw-user-input -p tcp --dport 22 -j ACCEPT"),
            None
        );
    }

    #[test]
    fn addresses_are_normalised() {
        for (input, expected) in [
            ("any", Address::Any),
            ("192.168.1.5", Address::V4("192.168.1.5".into())),
            ("192.168.1.5/32", Address::V4("192.168.1.5".into())),
            ("10.1.2.3/8", Address::V4("10.0.0.0/8".into())),
            ("2001:DB8:0:0::1", Address::V6("2001:db8::1".into())),
            ("2001:db8::1/32", Address::V6("2001:db8::/32".into())),
        ] {
            assert_eq!(
                parse_address("from_ip", Some(input.into())).unwrap(),
                expected,
                "{input}"
            );
        }
        for input in ["example.org", "10.0.0.0/33", "1.2.3"] {
            assert!(
                parse_address("from_ip", Some(input.into())).is_err(),
                "{input}"
            );
        }
    }

    #[test]
    fn invalid_arguments_are_rejected() {
        for (args, fragment) in [
            (json!({}), "one of `state`"),
            (json!({"port": "22"}), "argument `port`"),
            (json!({"rule": "allow", "port": "22x"}), "argument `port`"),
            (
                json!({"rule": "allow", "port": "1000:2000"}),
                "`proto: tcp`",
            ),
            (
                json!({"rule": "allow", "port": "80,443", "proto": "any"}),
                "`proto: tcp`",
            ),
            (
                json!({"rule": "allow", "from_ip": "10.0.0.1", "to_ip": "::1"}),
                "same IP version",
            ),
            (
                json!({"rule": "allow", "direction": "routed"}),
                "`route: true`",
            ),
            (
                json!({"default": "deny", "direction": "in"}),
                "argument `direction`",
            ),
            (json!({"rule": "permit"}), "argument `rule`"),
            (
                json!({"rule": "allow", "name": "OpenSSH", "port": "22"}),
                "argument `name`",
            ),
            (json!({"rule": "allow", "insert": 0}), "argument `insert`"),
            (
                json!({"rule": "allow", "insert": 1, "insert_relative_to": "first-ipv6"}),
                "argument `insert_relative_to`",
            ),
            (
                json!({"rule": "allow", "interface": "eth0; rm"}),
                "argument `interface`",
            ),
            (
                json!({"logging": "on", "proto": "tcp"}),
                "mutually exclusive",
            ),
        ] {
            let error = Ufw::from_args(&serde_json::from_value(args.clone()).unwrap())
                .err()
                .unwrap_or_else(|| panic!("accepted {args}"));
            assert!(error.to_string().contains(fragment), "{args}: {error}");
        }
    }

    #[test]
    fn finish_registers_status() {
        let ufw = ufw(json!({"state": "disabled"}));
        let plan = plan(&ufw, &active());
        let output = ExecOutput {
            stdout: "Firewall stopped and disabled on system startup\n==> status <==\nStatus: inactive\n".into(),
            ..ExecOutput::default()
        };
        let result = ufw.finish(&plan, &output).unwrap();
        assert_eq!(result.get("msg"), Some(&json!("Status: inactive")));
        assert_eq!(result.get("commands"), Some(&json!(["ufw disable"])));
    }

    #[test]
    fn probe_runs_without_ufw() {
        let probe = ufw(json!({"state": "enabled"})).probe().unwrap();
        assert_eq!(sh_syntax_error(&probe), None);
        // This machine has no ufw, so the probe must report that and nothing else.
        if std::process::Command::new("sh")
            .arg("-c")
            .arg("command -v ufw")
            .output()
            .unwrap()
            .status
            .success()
        {
            return;
        }
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&probe)
            .output()
            .unwrap();
        let parsed = parse_probe(&ExecOutput {
            stdout: String::from_utf8(output.stdout).unwrap(),
            ..ExecOutput::default()
        })
        .unwrap();
        assert!(matches!(parsed, Probed::Missing), "{parsed:?}");
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
