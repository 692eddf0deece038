//! Inventories written into temporary folders and loaded from disk.

use std::path::Path;

use serde_json::{json, Value};
use tempfile::TempDir;

use super::Inventory;

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, text).unwrap();
    }
}

fn load(dir: &Path, sources: &[&str]) -> Inventory {
    let sources: Vec<String> = sources
        .iter()
        .map(|source| dir.join(source).display().to_string())
        .collect();
    match Inventory::load(&sources) {
        Ok(inventory) => inventory,
        Err(errors) => panic!("inventory failed to load:\n{}", errors.render()),
    }
}

/// Loads the files and returns the rendered errors, with the folder shown as `DIR`.
fn load_errors(files: &[(&str, &str)], source: &str) -> String {
    let dir = TempDir::new().unwrap();
    write(dir.path(), files);
    let sources = vec![dir.path().join(source).display().to_string()];
    match Inventory::load(&sources) {
        Ok(_) => panic!("inventory `{source}` loaded without errors: {files:?}"),
        Err(errors) => errors
            .render()
            .replace(&dir.path().display().to_string(), "DIR"),
    }
}

const SAME_YAML: &str = "\
all:
  vars:
    ntp: pool.ntp.org
  hosts:
    bastion:
      ansible_host: 10.0.0.1
  children:
    web:
      hosts:
        web[01:02].example.com:
          http_port: 8080
          tls: true
      vars:
        role: frontend
    db:
      hosts:
        db-[a:b]:
        db-c:2222:
      vars:
        role: database
    site:
      children:
        web:
        db:
";

const SAME_INI: &str = "\
bastion ansible_host=10.0.0.1

[web]
web[01:02].example.com http_port=8080 tls=True

[web:vars]
role='frontend'

[db]
db-[a:b]
db-c:2222

[db:vars]
role=\"database\"

[site:children]
web
db

[all:vars]
ntp=pool.ntp.org
";

#[test]
fn yaml_and_ini_agree() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        &[("hosts.yml", SAME_YAML), ("hosts.ini", SAME_INI)],
    );
    let yaml = load(dir.path(), &["hosts.yml"]);
    let ini = load(dir.path(), &["hosts.ini"]);

    let names = |inventory: &Inventory| -> Vec<String> {
        inventory.hosts.iter().map(|h| h.name.clone()).collect()
    };
    let expected_hosts = [
        "bastion",
        "web01.example.com",
        "web02.example.com",
        "db-a",
        "db-b",
        "db-c",
    ];
    assert_eq!(names(&yaml), expected_hosts);
    assert_eq!(names(&ini), expected_hosts);

    let groups: Vec<&String> = yaml.groups.keys().collect();
    assert_eq!(groups, ["all", "db", "site", "ungrouped", "web"]);
    assert_eq!(
        ini.groups.keys().collect::<Vec<_>>(),
        groups,
        "INI groups differ"
    );
    for group in yaml.groups.keys() {
        assert_eq!(
            yaml.hosts_of_group(group),
            ini.hosts_of_group(group),
            "hosts of group {group}"
        );
    }
    assert_eq!(yaml.hosts_of_group("ungrouped"), ["bastion"]);
    assert_eq!(yaml.hosts_of_group("site").len(), 5);

    for host in expected_hosts {
        assert_eq!(yaml.host_vars(host), ini.host_vars(host), "vars of {host}");
        assert_eq!(
            yaml.groups_of(host),
            ini.groups_of(host),
            "groups of {host}"
        );
    }
    assert_eq!(
        Value::Object(yaml.host_vars("web01.example.com")),
        json!({"ntp": "pool.ntp.org", "role": "frontend", "http_port": 8080, "tls": true})
    );
    assert_eq!(
        Value::Object(ini.host_vars("db-c")),
        json!({"ntp": "pool.ntp.org", "role": "database", "ansible_port": 2222})
    );
    assert_eq!(yaml.groups_of("db-a"), ["all", "site", "db"]);
}

/// The places a variable can be set, lowest precedence first.
const LAYERS: &[&str] = &[
    "file group all",
    "file group site",
    "file group web",
    "inventory group_vars/all",
    "playbook group_vars/all",
    "inventory group_vars/web",
    "playbook group_vars/web",
    "file host",
    "inventory host_vars/web1",
    "playbook host_vars/web1",
];

/// Writes an inventory where host `web1` is in `web`, a child of `site`, and `x`
/// is set in each of the given layers to the layer's name.
fn precedence_inventory(layers: &[&str]) -> Inventory {
    let dir = TempDir::new().unwrap();
    let set = |layer: &str| {
        if layers.contains(&layer) {
            format!("x: {layer}\n")
        } else {
            "{}\n".to_string()
        }
    };
    let indented = |layer: &str, indent: usize| {
        if layers.contains(&layer) {
            format!("{}x: {layer}\n", " ".repeat(indent))
        } else {
            String::new()
        }
    };
    let inventory = format!(
        "all:\n  vars:\n    y: 1\n{}  children:\n    site:\n      vars:\n        y: 1\n{}      children:\n        web:\n          vars:\n            y: 1\n{}          hosts:\n            web1:\n              y: 1\n{}",
        indented("file group all", 4),
        indented("file group site", 8),
        indented("file group web", 12),
        indented("file host", 14),
    );
    write(
        dir.path(),
        &[
            ("inventory/hosts.yml", &inventory),
            (
                "inventory/group_vars/all.yml",
                &set("inventory group_vars/all"),
            ),
            (
                "inventory/group_vars/web.yml",
                &set("inventory group_vars/web"),
            ),
            (
                "inventory/host_vars/web1.yml",
                &set("inventory host_vars/web1"),
            ),
            (
                "playbook/group_vars/all.yml",
                &set("playbook group_vars/all"),
            ),
            (
                "playbook/group_vars/web.yml",
                &set("playbook group_vars/web"),
            ),
            (
                "playbook/host_vars/web1.yml",
                &set("playbook host_vars/web1"),
            ),
        ],
    );
    let mut loaded = load(dir.path(), &["inventory/hosts.yml"]);
    loaded
        .add_playbook_vars(&dir.path().join("playbook"))
        .unwrap();
    loaded
}

#[test]
fn precedence_follows_ansible() {
    let mut cases: Vec<(Vec<&str>, &str)> = Vec::new();
    for (index, layer) in LAYERS.iter().enumerate() {
        cases.push((LAYERS[..=index].to_vec(), layer));
        cases.push((vec![layer], layer));
    }
    cases.extend([
        (
            vec!["file group web", "inventory group_vars/all"],
            "inventory group_vars/all",
        ),
        (
            vec!["inventory group_vars/web", "playbook group_vars/all"],
            "inventory group_vars/web",
        ),
        (vec!["file host", "playbook group_vars/web"], "file host"),
        (
            vec!["playbook host_vars/web1", "file group all"],
            "playbook host_vars/web1",
        ),
    ]);
    for (layers, winner) in cases {
        let inventory = precedence_inventory(&layers);
        assert_eq!(
            inventory.host_vars("web1").get("x"),
            Some(&json!(winner)),
            "layers {layers:?}"
        );
    }
}

#[test]
fn sibling_groups_order_by_priority_then_name() {
    let cases = [("", "beta"), ("    ansible_group_priority: 10\n", "alpha")];
    for (alpha_priority, winner) in cases {
        let dir = TempDir::new().unwrap();
        let text = format!(
            "alpha:\n  hosts:\n    h1:\n  vars:\n    x: alpha\n{alpha_priority}beta:\n  hosts:\n    h1:\n  vars:\n    x: beta\n"
        );
        write(dir.path(), &[("hosts.yml", &text)]);
        let inventory = load(dir.path(), &["hosts.yml"]);
        assert_eq!(
            inventory.host_vars("h1")["x"],
            json!(winner),
            "priority {alpha_priority:?}"
        );
    }
}

#[test]
fn replace_not_merge_dicts() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        &[
            (
                "hosts.yml",
                "all:\n  vars:\n    users: {a: 1, b: 2}\n  hosts:\n    h1:\n",
            ),
            ("host_vars/h1.yml", "users: {c: 3}\n"),
        ],
    );
    let inventory = load(dir.path(), &["hosts.yml"]);
    assert_eq!(inventory.host_vars("h1")["users"], json!({"c": 3}));
}

#[test]
fn vars_folders_load_sorted() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        &[
            ("hosts", "[web]\nweb1\n"),
            ("group_vars/web/10-base.yml", "a: base\nb: base\n"),
            ("group_vars/web/20-override.yaml", "b: override\n"),
            ("group_vars/web/notes.txt", "b: ignored\n"),
            ("group_vars/web/30-backup.yml~", "b: ignored\n"),
            ("group_vars/web.json", "{\"c\": \"json\"}"),
            ("host_vars/web1", "d: plain\n"),
            ("host_vars/other.yml", "e: unused\n"),
        ],
    );
    let inventory = load(dir.path(), &["hosts"]);
    assert_eq!(
        Value::Object(inventory.host_vars("web1")),
        json!({"a": "base", "b": "override", "c": "json", "d": "plain"})
    );
}

#[test]
fn directory_sources_merge_in_order() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        &[
            ("inv/10-web.yml", "web:\n  hosts:\n    web1:\n      x: 1\n"),
            ("inv/20-db", "[db]\ndb1\n[web]\nweb1 x=2\n"),
            ("inv/30-extra.ini", "[extra]\nextra1\n"),
            ("inv/README.md", "not an inventory\n"),
            ("inv/hosts.retry", "retry1\n"),
            ("inv/hosts.orig", "orig1\n"),
            ("inv/hosts~", "backup1\n"),
            ("inv/.hidden", "hidden1\n"),
            ("inv/group_vars/all.yml", "from_dir: yes\n"),
            ("inv/sub/40-more.yaml", "all:\n  hosts:\n    more1:\n"),
        ],
    );
    let inventory = load(dir.path(), &["inv"]);
    let names: Vec<&str> = inventory.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["web1", "db1", "extra1", "more1"]);
    assert_eq!(inventory.host_vars("web1")["x"], json!(2));
    assert_eq!(inventory.host_vars("more1")["from_dir"], json!(true));
    assert_eq!(inventory.hosts_of_group("ungrouped"), ["more1"]);
}

#[test]
fn host_list_source() {
    let inventory = Inventory::load(&["10.0.0.5,web1:2222, ,web2".to_string()]).unwrap();
    let names: Vec<&str> = inventory.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["10.0.0.5", "web1", "web2"]);
    assert_eq!(inventory.hosts_of_group("ungrouped"), names);
    assert_eq!(inventory.host_vars("web1")["ansible_port"], json!(2222));
    assert!(inventory.host_vars("web2").is_empty());
    assert!(inventory.host("web2").is_some());
    assert!(inventory.host("web3").is_none());
}

#[test]
fn missing_source_is_an_error() {
    let errors = Inventory::load(&["no-such-inventory".to_string()]).unwrap_err();
    assert_eq!(
        errors.render(),
        "error: inventory source `no-such-inventory` not found\n  = help: give an inventory file or directory, or a host list such as `web1,web2,`\n"
    );
}

const PATTERN_INVENTORY: &str = "\
all:
  hosts:
    lone:
  children:
    web:
      hosts:
        web1.example.com:
        web2.example.com:
        web3.example.com:
    db:
      hosts:
        db1:
        web2.example.com:
    prod:
      children:
        web:
        db:
    staging:
      hosts:
        stage1:
";

#[test]
fn pattern_table() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), &[("hosts.yml", PATTERN_INVENTORY)]);
    let inventory = load(dir.path(), &["hosts.yml"]);
    let web = ["web1.example.com", "web2.example.com", "web3.example.com"];
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("all", vec!["lone", web[0], web[1], web[2], "db1", "stage1"]),
        ("*", vec!["lone", web[0], web[1], web[2], "db1", "stage1"]),
        ("web", web.to_vec()),
        ("db1", vec!["db1"]),
        ("db:web", web.iter().copied().chain(["db1"]).collect()),
        ("db,web", web.iter().copied().chain(["db1"]).collect()),
        ("web:&db", vec![web[1]]),
        ("web:!db", vec![web[0], web[2]]),
        ("!db:web", vec![web[0], web[2]]),
        ("&db:web", vec![web[1]]),
        ("prod:!web2.example.com", vec![web[0], web[2], "db1"]),
        ("!prod", vec!["lone", "stage1"]),
        ("web*", web.to_vec()),
        ("*.example.com", web.to_vec()),
        ("web?.example.com", web.to_vec()),
        ("~web[13]", vec![web[0], web[2]]),
        ("~(db|stage)\\d", vec!["db1", "stage1"]),
        ("web[0]", vec![web[0]]),
        ("web[-1]", vec![web[2]]),
        ("web[1:]", vec![web[1], web[2]]),
        ("web[0:1]", vec![web[0], web[1]]),
        ("ungrouped", vec!["lone"]),
        ("staging, lone", vec!["lone", "stage1"]),
        ("web:&staging", vec![]),
        ("web[7]", vec![]),
        ("web[99999999999999999999]", vec![]),
        ("web[1:99999999999999999999]", vec![web[1], web[2]]),
    ];
    for (pattern, expected) in cases {
        assert_eq!(
            inventory.select(pattern).unwrap(),
            expected,
            "pattern {pattern}"
        );
    }
}

#[test]
fn pattern_errors() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), &[("hosts.yml", PATTERN_INVENTORY)]);
    let inventory = load(dir.path(), &["hosts.yml"]);
    let cases = [
        (
            "stagin",
            "error: host pattern `stagin` matches no host or group\n  = help: did you mean `staging`?\n",
        ),
        (
            "web:!stagng",
            "error: host pattern `stagng` matches no host or group\n  = help: did you mean `staging`?\n",
        ),
        (
            " , ",
            "error: host pattern ` , ` is empty\n  = help: write `all` to select every host, or a group or host name\n",
        ),
        (
            "qqq",
            "error: host pattern `qqq` matches no host or group\n  = help: run `vpsforge inventory --list` to see the hosts and groups\n",
        ),
        (
            "~web(",
            "error: invalid regular expression in host pattern `~web(`: unclosed group\n  = help: write a regular expression after `~`, such as `~web\\d+`\n",
        ),
    ];
    for (pattern, rendered) in cases {
        let error = inventory.select(pattern).unwrap_err();
        assert_eq!(error.render(), rendered, "pattern {pattern}");
    }
}

#[test]
fn magic_vars_of_host() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), &[("hosts.yml", PATTERN_INVENTORY)]);
    let inventory = load(dir.path(), &["hosts.yml"]);
    let vars = inventory.magic_vars("web2.example.com");
    assert_eq!(vars["inventory_hostname"], json!("web2.example.com"));
    assert_eq!(vars["inventory_hostname_short"], json!("web2"));
    assert_eq!(vars["group_names"], json!(["db", "prod", "web"]));
    assert_eq!(vars["groups"]["db"], json!(["web2.example.com", "db1"]));
    assert_eq!(vars["groups"]["ungrouped"], json!(["lone"]));
    assert_eq!(
        vars["inventory_file"],
        json!(dir.path().join("hosts.yml").display().to_string())
    );
    assert_eq!(
        inventory.magic_vars("lone")["group_names"],
        json!(["ungrouped"])
    );

    let mut own = inventory.host_magic_vars("web2.example.com");
    assert!(!own.contains_key("groups"));
    own.insert("groups".into(), vars["groups"].clone());
    assert_eq!(own, vars);
}

#[test]
fn list_json_shape() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        &[
            (
                "hosts",
                "[web]\nweb1 port=80\n[prod:children]\nweb\n[empty]\n",
            ),
            ("group_vars/web.yml", "tier: front\n"),
        ],
    );
    let inventory = load(dir.path(), &["hosts"]);
    assert_eq!(
        inventory.to_list_json(),
        json!({
            "_meta": {"hostvars": {"web1": {"tier": "front", "port": 80}}},
            "all": {"children": ["empty", "prod", "ungrouped"]},
            "prod": {"children": ["web"]},
            "web": {"hosts": ["web1"]},
        })
    );
}

#[test]
fn yaml_errors_render_with_caret() {
    let cases: &[(&str, &str)] = &[
        (
            "all:\n  hosts:\n    - web1\n",
            "error: `hosts` of group `all` must be a mapping of host names to variables, not a list\n  --> DIR/hosts.yml:3:5\n  |\n3 |     - web1\n  |     ^\n  = help: write each host as a key ending in `:`, such as `web1:`\n",
        ),
        (
            "all:\n  hostz:\n    web1:\n",
            "error: unknown key `hostz` in group `all`\n  --> DIR/hosts.yml:2:3\n  |\n2 |   hostz:\n  |   ^\n  = help: did you mean `hosts`?\n",
        ),
        (
            "all:\n  children:\n    123:\n",
            "error: a group name must be a string, not an integer\n  --> DIR/hosts.yml:3:5\n  |\n3 |     123:\n  |     ^\n  = help: quote the name if it looks like a number or a boolean\n",
        ),
        (
            "web:\n  hosts:\n    yes:\n",
            "error: a host name must be a string, not a boolean\n  --> DIR/hosts.yml:3:5\n  |\n3 |     yes:\n  |     ^\n  = help: quote the name if it looks like a number or a boolean\n",
        ),
        (
            "web:\n  hosts:\n    web[3:1]:\n",
            "error: host range `[3:1]` must have begin <= end in `web[3:1]`\n  --> DIR/hosts.yml:3:5\n  |\n3 |     web[3:1]:\n  |     ^\n",
        ),
        (
            "web:\n  vars: [a]\n",
            "error: `vars` of group `web` must be a mapping, not a list\n  --> DIR/hosts.yml:2:9\n  |\n2 |   vars: [a]\n  |         ^\n  = help: write one `name: value` line per variable\n",
        ),
        (
            "web:\n  hosts:\n    web1: 10.0.0.5\n",
            "error: variables of host `web1` must be a mapping, not a string\n  --> DIR/hosts.yml:3:11\n  |\n3 |     web1: 10.0.0.5\n  |           ^\n  = help: write one `name: value` line per variable, indented under the host\n",
        ),
        (
            "a:\n  children:\n    b:\n      children:\n        a:\n",
            "error: adding group `a` as a child of `b` creates a loop of child groups\n  --> DIR/hosts.yml:5:9\n  |\n5 |         a:\n  |         ^\n",
        ),
        (
            "plugin: aws_ec2\nregions: {}\n",
            "error: inventory plugins are not supported\n  --> DIR/hosts.yml:1:1\n  |\n1 | plugin: aws_ec2\n  | ^\n  = help: list the hosts and groups in a static YAML or INI inventory\n",
        ),
    ];
    for (text, rendered) in cases {
        assert_eq!(
            load_errors(&[("hosts.yml", text)], "hosts.yml"),
            *rendered,
            "inventory {text:?}"
        );
    }
}

#[test]
fn ini_errors_render_with_caret() {
    let cases: &[(&str, &str)] = &[
        (
            "[web:hosts]\nweb1\n",
            "error: unknown section type `hosts` in `[web:hosts]`\n  --> DIR/hosts:1:6\n  |\n1 | [web:hosts]\n  |      ^\n  = help: write `[web]` for hosts, `[web:vars]` for variables or `[web:children]` for child groups\n",
        ),
        (
            "[web]\nweb1\n[prod:children]\nweb\n  dbs\n",
            "error: group `dbs` in `[prod:children]` is not defined\n  --> DIR/hosts:5:3\n  |\n5 |   dbs\n  |   ^\n  = help: add a `[dbs]` section, which may be empty, or remove this line\n",
        ),
        (
            "[web:vars]\nx=1\n",
            "error: section `[web:vars]` sets variables of group `web`, which is not defined\n  --> DIR/hosts:1:1\n  |\n1 | [web:vars]\n  | ^\n  = help: add a `[web]` section with its hosts, or a `[web:children]` section\n",
        ),
        (
            "[web]\nweb1 port=80 sudo\n",
            "error: expected `key=value` after host `web1`, found `sudo`\n  --> DIR/hosts:2:14\n  |\n2 | web1 port=80 sudo\n  |              ^\n  = help: quote values that contain spaces, as in `key=\"two words\"`\n",
        ),
        (
            "[web]\nweb1 msg=\"hello\n",
            "error: no closing quotation for the `\"` here\n  --> DIR/hosts:2:10\n  |\n2 | web1 msg=\"hello\n  |          ^\n  = help: close the quote before the end of the line\n",
        ),
        (
            "[web servers]\nweb1\n",
            "error: invalid section header `[web servers]`\n  --> DIR/hosts:1:1\n  |\n1 | [web servers]\n  | ^\n  = help: a section header is `[NAME]`, `[NAME:vars]` or `[NAME:children]`, with no spaces\n",
        ),
        (
            "[web]\nweb[01:5]\n",
            "error: host range `[01:5]` must give begin and end with the same number of digits in `web[01:5]`\n  --> DIR/hosts:2:1\n  |\n2 | web[01:5]\n  | ^\n",
        ),
        (
            "[prod:children]\nzeta\nalpha\n",
            "error: group `zeta` in `[prod:children]` is not defined\n  --> DIR/hosts:2:1\n  |\n2 | zeta\n  | ^\n  = help: add a `[zeta]` section, which may be empty, or remove this line\n\nerror: group `alpha` in `[prod:children]` is not defined\n  --> DIR/hosts:3:1\n  |\n3 | alpha\n  | ^\n  = help: add a `[alpha]` section, which may be empty, or remove this line\n",
        ),
        (
            "[web:vars]\nx\n[web]\n",
            "error: expected `key=value` in `[web:vars]`, found `x`\n  --> DIR/hosts:2:1\n  |\n2 | x\n  | ^\n  = help: write one `name=value` line per variable\n",
        ),
        (
            "[web]\nweb1:\n",
            "error: invalid host `web1:`: a `:` after a host name must be followed by a port\n  --> DIR/hosts:2:1\n  |\n2 | web1:\n  | ^\n  = help: remove the `:`, or write a port number after it\n",
        ),
    ];
    for (text, rendered) in cases {
        assert_eq!(
            load_errors(&[("hosts", text)], "hosts"),
            *rendered,
            "inventory {text:?}"
        );
    }
}

#[test]
fn extensionless_yaml_reports_yaml_error() {
    let rendered = load_errors(
        &[("hosts", "# fleet\nall:\n  hosts:\n    web1:\n   bad: 1\n")],
        "hosts",
    );
    assert_eq!(
        rendered,
        "error: invalid YAML: while parsing a block mapping, did not find expected key\n  --> DIR/hosts:5:4\n  |\n5 |    bad: 1\n  |    ^\n  = help: check the indentation and quoting on this line and the one above\n"
    );
}

#[test]
fn vars_file_errors_render_with_caret() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "group_vars/web.yml",
            "- a\n- b\n",
            "error: variables file `DIR/group_vars/web.yml` must contain a mapping of variable names to values, not a list\n  --> DIR/group_vars/web.yml:1:1\n  |\n1 | - a\n  | ^\n  = help: write one `name: value` line per variable\n",
        ),
        (
            "host_vars/web1/main.yml",
            "a: [1, 2\nb: 3\n",
            "error: invalid YAML: illegal placement of ':' indicator\n  --> DIR/host_vars/web1/main.yml:2:2\n  |\n2 | b: 3\n  |  ^\n  = help: check the indentation and quoting on this line and the one above\n",
        ),
        (
            "host_vars/web1.yml",
            "x: 1\n  y: 2\n",
            "error: invalid YAML: mapping values are not allowed in this context\n  --> DIR/host_vars/web1.yml:2:4\n  |\n2 |   y: 2\n  |    ^\n  = help: check the indentation and quoting on this line and the one above\n",
        ),
    ];
    for (path, text, rendered) in cases {
        let output = load_errors(&[("hosts", "[web]\nweb1\n"), (path, text)], "hosts");
        assert_eq!(output, *rendered, "file {path}");
    }
}

#[test]
fn ini_values_follow_python_literals() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        &[(
            "hosts",
            "[web]\nweb1 a=1 b=True c=yes d=\"two words\" e='0644' f=10.0.0.5 g=\"'q'\" h=[1,2]\n[web:vars]\ni=5\nj=hello world\nk='quoted'\nl=5 # five\n",
        )],
    );
    let inventory = load(dir.path(), &["hosts"]);
    assert_eq!(
        Value::Object(inventory.host_vars("web1")),
        json!({
            "i": 5, "j": "hello world", "k": "quoted", "l": 5,
            "a": 1, "b": true, "c": "yes", "d": "two words", "e": "0644",
            "f": "10.0.0.5", "g": "q", "h": [1, 2],
        })
    );
}
