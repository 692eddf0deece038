//! Playbook loading: playbooks written into temporary folders, loaded against a
//! small module registry, and compared with the expected structure or the whole
//! rendered error report.

use serde_json::json;
use vpsforge::modules::{
    Action, Args, BuildContext, ModuleError, ModuleKind, ModuleSpec, Param, ParamKind,
};
use vpsforge::playbook::{
    load, LoadOptions, LoopConversion, MetaAction, Playbook, SectionKind, Serial, Task, TaskKind,
};

/// Loading never builds an action, so the specs below reject any call.
fn never_built(_: &Args, _: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    Err(ModuleError::Failed(
        "loading tests never build actions".into(),
    ))
}

static APT: ModuleSpec = ModuleSpec {
    name: "apt",
    aliases: &["ansible.builtin.apt"],
    params: &[
        Param::new("name", ParamKind::List).aliases(&["pkg", "package"]),
        Param::new("state", ParamKind::Str).choices(&["present", "absent", "latest"]),
        Param::new("update_cache", ParamKind::Bool),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build: never_built,
};

static COMMAND: ModuleSpec = ModuleSpec {
    name: "command",
    aliases: &["ansible.builtin.command"],
    params: &[
        Param::new("cmd", ParamKind::Str),
        Param::new("chdir", ParamKind::Str),
        Param::new("creates", ParamKind::Str),
        Param::new("removes", ParamKind::Str),
    ],
    free_form: true,
    kind: ModuleKind::Remote,
    build: never_built,
};

static SERVICE: ModuleSpec = ModuleSpec {
    name: "service",
    aliases: &["ansible.builtin.service"],
    params: &[
        Param::new("name", ParamKind::Str).required(),
        Param::new("state", ParamKind::Str).choices(&[
            "started",
            "stopped",
            "restarted",
            "reloaded",
        ]),
        Param::new("enabled", ParamKind::Bool),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build: never_built,
};

static COPY: ModuleSpec = ModuleSpec {
    name: "copy",
    aliases: &["ansible.builtin.copy"],
    params: &[
        Param::new("dest", ParamKind::Str).required(),
        Param::new("src", ParamKind::Str),
        Param::new("content", ParamKind::Str),
        Param::new("mode", ParamKind::Mode),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build: never_built,
};

static DEBUG: ModuleSpec = ModuleSpec {
    name: "debug",
    aliases: &["ansible.builtin.debug"],
    params: &[
        Param::new("msg", ParamKind::Raw),
        Param::new("var", ParamKind::Str),
    ],
    free_form: false,
    kind: ModuleKind::Controller,
    build: never_built,
};

static SHELL: ModuleSpec = ModuleSpec {
    name: "shell",
    aliases: &["ansible.builtin.shell"],
    params: &[
        Param::new("chdir", ParamKind::Str),
        Param::new("creates", ParamKind::Str),
        Param::new("executable", ParamKind::Str),
    ],
    free_form: true,
    kind: ModuleKind::Remote,
    build: never_built,
};

static SET_FACT: ModuleSpec = ModuleSpec {
    name: "set_fact",
    aliases: &["ansible.builtin.set_fact"],
    params: &[],
    free_form: false,
    kind: ModuleKind::Controller,
    build: never_built,
};

static MODULES: &[&ModuleSpec] = &[&APT, &COMMAND, &SERVICE, &COPY, &DEBUG, &SHELL, &SET_FACT];

/// Writes `files` into a new temporary folder and loads `site.yml` from it.
fn load_files(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Playbook, String>) {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    for (path, text) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("file has a folder")).expect("create folders");
        std::fs::write(&full, text).expect("write file");
    }
    let options = LoadOptions {
        modules: MODULES,
        roles_path: Vec::new(),
    };
    let result = load(&dir.path().join("site.yml"), &options).map_err(|diagnostics| {
        diagnostics
            .render()
            .replace(&format!("{}/", dir.path().display()), "")
    });
    (dir, result)
}

/// Loads `files` and returns the whole rendered error report, with paths relative
/// to the temporary folder.
fn load_error(files: &[(&str, &str)]) -> String {
    match load_files(files).1 {
        Ok(_) => panic!("loading succeeded, expected errors"),
        Err(report) => report,
    }
}

fn load_ok(files: &[(&str, &str)]) -> (tempfile::TempDir, Playbook) {
    let (dir, result) = load_files(files);
    match result {
        Ok(playbook) => (dir, playbook),
        Err(report) => panic!("loading failed:\n{report}"),
    }
}

fn module_args(task: &Task) -> (&str, serde_json::Value) {
    match &task.kind {
        TaskKind::Action { module, args, .. } => {
            (module.name, serde_json::Value::Object(args.clone()))
        }
        other => panic!("expected a module task, got {other:?}"),
    }
}

fn conditions(task: &Task) -> Vec<&str> {
    task.when.iter().map(|c| c.expr.as_str()).collect()
}

const SITE: &str = r#"- name: web
  hosts: [web, db]
  become: yes
  serial: [1, "30%"]
  remote_user: deploy
  tags: site
  vars:
    greeting: "hello {{ name }}"
  vars_files:
    - vars/common.yml
    - "vars/{{ env }}.yml"
  roles:
    - common
    - role: nginx
      when: install_nginx
      tags: [web]
      port: 8080
  pre_tasks:
    - name: refresh cache
      apt: update_cache=yes
  tasks:
    - name: guarded
      when: ansible_os_family == "Debian"
      tags: guarded
      become_user: admin
      vars:
        level: 1
      block:
        - name: install packages
          apt:
            pkg: "{{ item }}"
            state: present
          with_items:
            - [curl, git]
            - vim
          notify: restart nginx
        - command: ls -l /srv chdir=/srv
          register: listing
          when:
            - listing_enabled
            - "{{ verbose }}"
          become_user: root
      rescue:
        - debug: msg="failed"
      always:
        - meta: flush_handlers
    - name: users
      debug:
        msg: "{{ item.key }} is {{ item.value }}"
      with_dict:
        alice: admin
        bob: dev
      loop_control:
        label: "{{ item.key }}"
        index_var: position
    - include_tasks: extra.yml
      when: extra_enabled
      tags: extra
    - name: wait
      command: /bin/true
      until:
        - result is success
        - "{{ result.rc == 0 }}"
  post_tasks:
    - name: announce
      debug: msg=done
      notify: web changed
  handlers:
    - name: web changed
      debug:
        msg: changed
"#;

const EXTRA: &str = r#"- name: extra copy
  copy:
    dest: /etc/motd
    content: "{{ motd }}"
"#;

const NGINX_TASKS: &str = r#"- name: install nginx
  apt: name=nginx
- import_tasks: config.yml
"#;

const NGINX_CONFIG: &str = r#"- name: configure nginx
  copy: dest=/etc/nginx/nginx.conf src=nginx.conf
  notify: reload web
"#;

const NGINX_HANDLERS: &str = r#"- name: restart nginx
  service: name=nginx state=restarted
- name: reload nginx
  service:
    name: nginx
    state: reloaded
  listen: reload web
"#;

fn site_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("site.yml", SITE),
        ("extra.yml", EXTRA),
        ("vars/common.yml", "a: 1\n"),
        ("roles/common/tasks/main.yml", "- debug: msg=common\n"),
        ("roles/base/tasks/main.yml", "- debug: msg=base\n"),
        (
            "roles/nginx/meta/main.yml",
            "dependencies:\n  - base\n  - common\n",
        ),
        ("roles/nginx/defaults/main.yml", "port: 80\n"),
        ("roles/nginx/vars/main.yml", "user: www-data\n"),
        ("roles/nginx/tasks/main.yml", NGINX_TASKS),
        ("roles/nginx/tasks/config.yml", NGINX_CONFIG),
        ("roles/nginx/handlers/main.yml", NGINX_HANDLERS),
    ]
}

#[test]
fn valid_playbook_play_fields() {
    let (_dir, playbook) = load_ok(&site_files());
    assert_eq!(playbook.plays.len(), 1);
    let play = &playbook.plays[0];
    assert_eq!(play.name.as_deref(), Some("web"));
    assert_eq!(play.hosts, "web,db");
    assert_eq!(play.r#become, Some(true));
    assert!(play.gather_facts);
    assert_eq!(play.serial, vec![Serial::Count(1), Serial::Percent(30.0)]);
    assert_eq!(play.remote_user.as_deref(), Some("deploy"));
    assert_eq!(play.tags, vec!["site"]);
    assert_eq!(play.vars["greeting"], json!("hello {{ name }}"));
    assert_eq!(
        play.vars_files,
        vec!["vars/common.yml", "vars/{{ env }}.yml"]
    );
    let kinds: Vec<SectionKind> = play.sections.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        vec![
            SectionKind::PreTasks,
            SectionKind::Roles,
            SectionKind::Tasks,
            SectionKind::PostTasks
        ]
    );
}

#[test]
fn valid_playbook_roles_expand_once() {
    let (_dir, playbook) = load_ok(&site_files());
    let roles = &playbook.plays[0].sections[1].tasks;
    let names: Vec<String> = roles.iter().map(Task::display_name).collect();
    // `common` already ran before `nginx`, so the dependency does not run it again.
    assert_eq!(
        names,
        vec!["debug", "debug", "install nginx", "configure nginx"]
    );
    let role_names: Vec<&str> = roles
        .iter()
        .map(|t| t.role.as_ref().map_or("", |r| r.name.as_str()))
        .collect();
    assert_eq!(role_names, vec!["common", "base", "nginx", "nginx"]);

    let install = &roles[2];
    assert_eq!(conditions(install), vec!["install_nginx"]);
    assert_eq!(install.tags, vec!["web", "site"]);
    assert_eq!(module_args(install), ("apt", json!({"name": "nginx"})));
    let role = install.role.as_ref().expect("task has its role");
    assert_eq!(role.defaults["port"], json!(80));
    assert_eq!(role.vars["user"], json!("www-data"));
    assert_eq!(role.params["port"], json!(8080));
    assert!(role.path.ends_with("roles/nginx"));

    // Dependencies inherit the condition of the role that pulls them in.
    assert_eq!(conditions(&roles[1]), vec!["install_nginx"]);
    assert!(conditions(&roles[0]).is_empty());
}

#[test]
fn valid_playbook_block_inheritance() {
    let (_dir, playbook) = load_ok(&site_files());
    let tasks = &playbook.plays[0].sections[2].tasks;
    let TaskKind::Block {
        block,
        rescue,
        always,
    } = &tasks[0].kind
    else {
        panic!("first task is not a block: {:?}", tasks[0].kind);
    };
    assert_eq!(block.len(), 2);
    assert_eq!(rescue.len(), 1);
    assert_eq!(always.len(), 1);

    let install = &block[0];
    assert_eq!(
        conditions(install),
        vec![r#"ansible_os_family == "Debian""#]
    );
    assert_eq!(install.tags, vec!["guarded", "site"]);
    assert_eq!(install.become_user.as_deref(), Some("admin"));
    assert_eq!(install.vars["level"], json!(1));
    assert_eq!(
        module_args(install),
        ("apt", json!({"name": "{{ item }}", "state": "present"}))
    );
    assert_eq!(install.r#loop, Some(json!(["curl", "git", "vim"])));
    assert_eq!(install.loop_conversion, None);
    assert_eq!(install.notify, vec!["restart nginx"]);

    let command = &block[1];
    assert_eq!(
        conditions(command),
        vec![
            r#"ansible_os_family == "Debian""#,
            "listing_enabled",
            "{{ verbose }}"
        ]
    );
    assert_eq!(command.become_user.as_deref(), Some("root"));
    assert_eq!(command.register.as_deref(), Some("listing"));
    assert_eq!(
        module_args(command),
        (
            "command",
            json!({"_raw_params": "ls -l /srv", "chdir": "/srv"})
        )
    );

    assert_eq!(module_args(&rescue[0]), ("debug", json!({"msg": "failed"})));
    assert_eq!(conditions(&rescue[0]).len(), 1);
    assert!(matches!(
        always[0].kind,
        TaskKind::Meta(MetaAction::FlushHandlers)
    ));
}

#[test]
fn valid_playbook_loops_and_includes() {
    let (_dir, playbook) = load_ok(&site_files());
    let tasks = &playbook.plays[0].sections[2].tasks;

    let users = &tasks[1];
    assert_eq!(
        users.r#loop,
        Some(json!([
            {"key": "alice", "value": "admin"},
            {"key": "bob", "value": "dev"}
        ]))
    );
    assert_eq!(users.loop_label.as_deref(), Some("{{ item.key }}"));
    assert_eq!(users.index_var.as_deref(), Some("position"));
    assert_eq!(users.loop_var, "item");

    let extra = &tasks[2];
    assert_eq!(extra.display_name(), "extra copy");
    assert_eq!(conditions(extra), vec!["extra_enabled"]);
    assert_eq!(extra.tags, vec!["extra", "site"]);
    assert_eq!(
        module_args(extra),
        (
            "copy",
            json!({"dest": "/etc/motd", "content": "{{ motd }}"})
        )
    );

    let wait = &tasks[3];
    assert_eq!(
        wait.until.as_ref().map(|c| c.expr.as_str()),
        Some("(result is success) and (result.rc == 0)")
    );
    assert_eq!(wait.retries, 3);
    assert_eq!(wait.delay, 5);
    assert_eq!(tasks.len(), 4);
}

#[test]
fn valid_playbook_handlers() {
    let (_dir, playbook) = load_ok(&site_files());
    let handlers = &playbook.plays[0].handlers;
    let names: Vec<String> = handlers.iter().map(Task::display_name).collect();
    assert_eq!(names, vec!["restart nginx", "reload nginx", "web changed"]);
    assert_eq!(handlers[1].listen, vec!["reload web"]);
    assert_eq!(
        handlers[0].role.as_ref().map(|r| r.name.as_str()),
        Some("nginx")
    );
    assert_eq!(
        module_args(&handlers[0]),
        ("service", json!({"name": "nginx", "state": "restarted"}))
    );
}

#[test]
fn templated_with_items_left_to_executor() {
    let (_dir, playbook) = load_ok(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - debug: var=item\n      with_items: \"{{ packages }}\"\n    - debug: var=item\n      with_dict: \"{{ users }}\"\n",
    )]);
    let tasks = &playbook.plays[0].sections[0].tasks;
    assert_eq!(tasks[0].r#loop, Some(json!("{{ packages }}")));
    assert_eq!(tasks[0].loop_conversion, Some(LoopConversion::FlattenOnce));
    assert_eq!(tasks[1].loop_conversion, Some(LoopConversion::DictToItems));
}

#[test]
fn import_playbook_inlines_plays() {
    let (_dir, playbook) = load_ok(&[
        (
            "site.yml",
            "- import_playbook: db.yml\n  tags: db\n- hosts: web\n  tasks:\n    - command: uptime\n",
        ),
        (
            "db.yml",
            "- hosts: db\n  gather_facts: no\n  tasks:\n    - apt: name=postgresql\n",
        ),
    ]);
    let hosts: Vec<&str> = playbook.plays.iter().map(|p| p.hosts.as_str()).collect();
    assert_eq!(hosts, vec!["db", "web"]);
    assert!(!playbook.plays[0].gather_facts);
    assert_eq!(playbook.plays[0].tags, vec!["db"]);
}

#[test]
fn args_keyword_and_template_args() {
    let (_dir, playbook) = load_ok(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - apt: name=curl\n      args:\n        state: absent\n        name: wget\n    - service: \"{{ service_args }}\"\n    - ansible.builtin.command:\n        cmd: ls\n",
    )]);
    let tasks = &playbook.plays[0].sections[0].tasks;
    assert_eq!(
        module_args(&tasks[0]),
        ("apt", json!({"state": "absent", "name": "curl"}))
    );
    assert_eq!(
        module_args(&tasks[1]),
        ("service", json!({"_variable_params": "{{ service_args }}"}))
    );
    assert_eq!(module_args(&tasks[2]), ("command", json!({"cmd": "ls"})));
}

#[test]
fn arg_spans_point_at_arguments() {
    let (_dir, playbook) = load_ok(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - apt: name=curl state='present'\n    - copy:\n        dest: /x\n",
    )]);
    let tasks = &playbook.plays[0].sections[0].tasks;
    let spans = |task: &Task| match &task.kind {
        TaskKind::Action { arg_spans, .. } => arg_spans
            .iter()
            .map(|(name, span)| (name.clone(), span.line, span.col))
            .collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    assert_eq!(
        spans(&tasks[0]),
        vec![("name".to_string(), 3, 12), ("state".to_string(), 3, 22)]
    );
    assert_eq!(spans(&tasks[1]), vec![("dest".to_string(), 5, 9)]);
}

#[test]
fn unknown_module_error() {
    let report = load_error(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - aptt: name=nginx\n",
    )]);
    assert_eq!(
        report,
        "error: unknown module or task keyword `aptt`\n  --> site.yml:3:7\n  |\n3 |     - aptt: name=nginx\n  |       ^\n  = help: did you mean `apt`?\n"
    );
}

#[test]
fn unknown_argument_error() {
    let report = load_error(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - apt: nmae=nginx\n",
    )]);
    assert_eq!(
        report,
        "error: unknown argument `nmae` for module `apt`\n  --> site.yml:3:12\n  |\n3 |     - apt: nmae=nginx\n  |            ^\n  = help: did you mean `name`?\n"
    );
}

#[test]
fn bad_yaml_error() {
    let report = load_error(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - apt: name=x\n     state: present\n",
    )]);
    assert_eq!(
        report,
        "error: invalid YAML: while parsing a block collection, did not find expected '-' indicator\n  --> site.yml:4:6\n  |\n4 |      state: present\n  |      ^\n  = help: check the indentation and quoting on this line and the one above\n"
    );
}

#[test]
fn template_syntax_error_in_argument() {
    let report = load_error(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - copy:\n        dest: \"/etc/{{ name }\"\n",
    )]);
    assert_eq!(
        report,
        "error: invalid template syntax: unexpected `}`, expected end of variable block\n  --> site.yml:4:29\n  |\n4 |         dest: \"/etc/{{ name }\"\n  |                             ^\n"
    );
}

#[test]
fn template_syntax_error_in_block_scalar() {
    let report = load_error(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - copy:\n        dest: /etc/motd\n        content: |\n          Welcome\n          {% if admin %}\n          hello {{ user }\n          {% endif %}\n",
    )]);
    assert_eq!(
        report,
        "error: invalid template syntax: unexpected `}`, expected end of variable block\n  --> site.yml:8:25\n  |\n8 |           hello {{ user }\n  |                         ^\n"
    );
}

#[test]
fn missing_role_error() {
    let report = load_error(&[("site.yml", "- hosts: all\n  roles:\n    - nginx\n")]);
    assert_eq!(
        report,
        "error: role `nginx` not found\n  --> site.yml:3:7\n  |\n3 |     - nginx\n  |       ^\n  = help: create the role in one of the folders searched: `roles/nginx`, `nginx`\n"
    );
}

#[test]
fn unknown_notify_error() {
    let report = load_error(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - command: /bin/true\n      notify: restart ngnix\n  handlers:\n    - name: restart nginx\n      service: name=nginx state=restarted\n",
    )]);
    assert_eq!(
        report,
        "error: unknown handler `restart ngnix`\n  --> site.yml:4:15\n  |\n4 |       notify: restart ngnix\n  |               ^\n  = help: did you mean `restart nginx`?\n"
    );
}

#[test]
fn several_errors_reported() {
    let report = load_error(&[(
        "site.yml",
        "- hosts: all\n  gather_fatcs: no\n  tasks:\n    - apt: name=nginx state=installed\n    - service:\n        state: started\n    - apt: name=curl\n      command: ls\n    - debug: msg=x\n      when: x ==\n",
    )]);
    assert_eq!(
        report,
        "error: unknown play keyword `gather_fatcs`\n  --> site.yml:2:3\n  |\n2 |   gather_fatcs: no\n  |   ^\n  = help: did you mean `gather_facts`?\n\nerror: invalid value `installed` for argument `state` of module `apt`\n  --> site.yml:4:23\n  |\n4 |     - apt: name=nginx state=installed\n  |                       ^\n  = help: expected one of `present`, `absent`, `latest`\n\nerror: missing required argument `name` for module `service`\n  --> site.yml:5:7\n  |\n5 |     - service:\n  |       ^\n  = help: add `name: ...` to the module's arguments\n\nerror: task has two modules: `apt` and `command`\n  --> site.yml:8:7\n  |\n8 |       command: ls\n  |       ^\n  = help: split it into one task per module\n\nerror: invalid template syntax: unexpected end of input, expected expression\n  --> site.yml:10:15\n   |\n10 |       when: x ==\n   |               ^\n"
    );
}

#[test]
fn missing_hosts_and_bad_keywords() {
    let report = load_error(&[(
        "site.yml",
        "- tasks:\n    - include_tasks: \"{{ file }}\"\n    - meta: refresh_inventory\n  become_method: su\n",
    )]);
    assert_eq!(
        report,
        "error: play has no `hosts`\n  --> site.yml:1:3\n  |\n1 | - tasks:\n  |   ^\n  = help: add `hosts: all` or the name of an inventory group\n\nerror: `include_tasks` needs a static file name, not `{{ file }}`\n  --> site.yml:2:22\n  |\n2 |     - include_tasks: \"{{ file }}\"\n  |                      ^\n  = help: only static includes are supported: include each file with its own `when`\n\nerror: meta action `refresh_inventory` is not supported\n  --> site.yml:3:13\n  |\n3 |     - meta: refresh_inventory\n  |             ^\n  = help: use `flush_handlers`, `end_play`, `end_host` or `noop`\n\nerror: become method `su` is not supported\n  --> site.yml:4:18\n  |\n4 |   become_method: su\n  |                  ^\n  = help: vpsforge becomes another user with `sudo` only\n"
    );
}

#[test]
fn include_cycle_reported() {
    let report = load_error(&[
        (
            "site.yml",
            "- hosts: all\n  tasks:\n    - import_tasks: a.yml\n",
        ),
        ("a.yml", "- include_tasks: a.yml\n"),
    ]);
    assert_eq!(
        report,
        "error: `a.yml` includes itself\n  --> a.yml:1:3\n  |\n1 | - include_tasks: a.yml\n  |   ^\n  = help: remove the include that leads back to this file\n"
    );
}

#[test]
fn missing_files_reported() {
    let report = load_error(&[(
        "site.yml",
        "- hosts: all\n  vars_files: [missing.yml]\n  tasks:\n    - include_tasks: nope.yml\n",
    )]);
    assert_eq!(
        report,
        "error: vars file `missing.yml` not found\n  --> site.yml:2:16\n  |\n2 |   vars_files: [missing.yml]\n  |                ^\n  = help: looked for `missing.yml`\n\nerror: task file `nope.yml` not found\n  --> site.yml:4:22\n  |\n4 |     - include_tasks: nope.yml\n  |                      ^\n  = help: looked in `nope.yml`\n"
    );
}

#[test]
fn roles_run_once_per_parameters() {
    let (_dir, playbook) = load_ok(&[
        (
            "site.yml",
            "- hosts: all\n  roles:\n    - app\n    - app\n    - role: app\n      vars:\n        port: 2\n    - twice\n    - twice\n  tasks:\n    - include_role:\n        name: app\n        tasks_from: extra\n      tags: late\n    - import_role:\n        name: app\n",
        ),
        ("roles/app/tasks/main.yml", "- debug: msg=main\n"),
        ("roles/app/tasks/extra.yaml", "- debug: msg=extra\n"),
        ("roles/twice/meta/main.yml", "allow_duplicates: true\n"),
        ("roles/twice/tasks/main.yml", "- debug: msg=twice\n"),
    ]);
    let play = &playbook.plays[0];
    let messages = |tasks: &[Task]| -> Vec<serde_json::Value> {
        tasks
            .iter()
            .map(|task| module_args(task).1["msg"].clone())
            .collect()
    };
    assert_eq!(
        messages(&play.sections[0].tasks),
        vec![json!("main"), json!("main"), json!("twice"), json!("twice")]
    );
    assert_eq!(
        play.sections[0].tasks[1]
            .role
            .as_ref()
            .map(|r| r.params["port"].clone()),
        Some(json!(2))
    );
    assert_eq!(
        messages(&play.sections[1].tasks),
        vec![json!("extra"), json!("main")]
    );
    assert_eq!(play.sections[1].tasks[0].tags, vec!["late"]);
}

#[test]
fn roles_path_searched_after_playbook_roles() {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(shared.join("base/tasks")).expect("create role folder");
    std::fs::write(shared.join("base/tasks/main.yml"), "- command: uptime\n").expect("write role");
    std::fs::write(
        dir.path().join("site.yml"),
        "- hosts: all\n  roles: [base]\n",
    )
    .expect("write playbook");
    let options = LoadOptions {
        modules: MODULES,
        roles_path: vec![shared.clone()],
    };
    let playbook = load(&dir.path().join("site.yml"), &options).expect("playbook loads");
    let task = &playbook.plays[0].sections[0].tasks[0];
    assert_eq!(
        module_args(task),
        ("command", json!({"_raw_params": "uptime"}))
    );
    assert_eq!(
        task.role.as_ref().map(|r| r.path.clone()),
        Some(shared.join("base"))
    );
}

#[test]
fn import_playbook_tags_reach_tasks() {
    let (_dir, playbook) = load_ok(&[
        ("site.yml", "- import_playbook: web.yml\n  tags: [web]\n"),
        (
            "web.yml",
            "- hosts: web\n  tasks:\n    - command: uptime\n      tags: own\n",
        ),
    ]);
    assert_eq!(
        playbook.plays[0].sections[0].tasks[0].tags,
        vec!["own", "web"]
    );
}

#[test]
fn loop_and_argument_errors() {
    let report = load_error(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - debug: var=item\n      loop: [1]\n      with_items: [2]\n    - debug: var=item\n      loop_control:\n        loop_vra: x\n    - apt: name=x state=\"{{ wanted }}\" stat=present\n    - apt: nginx\n    - debug: var=item\n      with_fileglob: '*.conf'\n",
    )]);
    assert_eq!(
        report,
        "error: task has both `loop` and `with_items`\n  --> site.yml:5:7\n  |\n5 |       with_items: [2]\n  |       ^\n  = help: keep one of them\n\nerror: unknown `loop_control` keyword `loop_vra`\n  --> site.yml:8:9\n  |\n8 |         loop_vra: x\n  |         ^\n  = help: did you mean `loop_var`?\n\nerror: unknown argument `stat` for module `apt`\n  --> site.yml:9:40\n  |\n9 |     - apt: name=x state=\"{{ wanted }}\" stat=present\n  |                                        ^\n  = help: did you mean `state`?\n\nerror: module `apt` does not take free-form text `nginx`\n  --> site.yml:10:12\n   |\n10 |     - apt: nginx\n   |            ^\n  = help: write the arguments as `key=value` pairs or as a mapping\n\nerror: `with_fileglob` is not supported\n  --> site.yml:12:7\n   |\n12 |       with_fileglob: '*.conf'\n   |       ^\n  = help: use `loop` with a filter, or `with_items`, `with_list` or `with_dict`\n"
    );
}

#[test]
fn shell_script_keeps_layout() {
    let (_dir, playbook) = load_ok(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - shell: |\n        chdir=/srv\n        for f in *; do\n          echo \"$f\"\n        done\n    - set_fact:\n        port: 80\n        url: \"http://{{ host }}\"\n",
    )]);
    let tasks = &playbook.plays[0].sections[0].tasks;
    assert_eq!(
        module_args(&tasks[0]),
        (
            "shell",
            json!({"chdir": "/srv", "_raw_params": "for f in *; do\n  echo \"$f\"\ndone"})
        )
    );
    assert_eq!(
        module_args(&tasks[1]),
        ("set_fact", json!({"port": 80, "url": "http://{{ host }}"}))
    );
}

#[test]
fn role_qualified_notify_resolves() {
    let (_dir, playbook) = load_ok(&[
        (
            "site.yml",
            "- hosts: all\n  roles: [web]\n  tasks:\n    - command: /bin/true\n      notify: \"web : restart web\"\n",
        ),
        ("roles/web/handlers/main.yml", "- name: restart web\n  service: name=web state=restarted\n"),
    ]);
    let task = &playbook.plays[0].sections[0].tasks[0];
    assert_eq!(task.notify, vec!["restart web"]);
}

#[test]
fn condition_and_hosts_errors() {
    let report = load_error(&[(
        "site.yml",
        "- hosts: \"\"\n  tasks:\n    - command: /bin/true\n      when: \"{{ x }} == 1\"\n",
    )]);
    assert_eq!(
        report,
        "error: `hosts` is empty\n  --> site.yml:1:10\n  |\n1 | - hosts: \"\"\n  |          ^\n  = help: use `all` or the name of an inventory group\n\nerror: invalid template syntax: unexpected `}`, expected `:`\n  --> site.yml:4:19\n  |\n4 |       when: \"{{ x }} == 1\"\n  |                   ^\n  = help: a condition is already an expression: write `x == 1`, not `{{ x }} == 1`\n"
    );
}

#[test]
fn unsafe_strings_skip_template_check() {
    let (_dir, playbook) = load_ok(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - debug:\n        msg: !unsafe \"{{ not closed\"\n",
    )]);
    let tasks = &playbook.plays[0]
        .sections
        .iter()
        .find(|s| !s.tasks.is_empty())
        .expect("a section with tasks")
        .tasks;
    let task = &tasks[0];
    let (_, args) = module_args(task);
    let msg = args["msg"].as_str().expect("msg is a string");
    assert_eq!(vpsforge::yaml::strip_unsafe(msg), Some("{{ not closed"));

    let report = load_error(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ not closed\"\n",
    )]);
    assert!(report.contains("invalid template syntax"), "{report}");
    assert!(report.contains("site.yml:4:22"), "{report}");
}
