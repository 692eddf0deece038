//! End-to-end runs of `vpsforge apply` through the local connection
//! (`ansible_connection: local`): the executor, the modules and the reporters
//! working together on files in a temporary folder, with no SSH and no root.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

struct Run {
    code: i32,
    events: Vec<Value>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn recap(&self, host: &str, field: &str) -> u64 {
        self.events
            .iter()
            .find(|e| e["event"] == "recap")
            .and_then(|e| e["hosts"][host][field].as_u64())
            .unwrap_or_else(|| panic!("no recap `{field}` for `{host}` in:\n{}", self.stdout))
    }

    fn task_status(&self, task: &str, host: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "task" && e["task"] == task && e["host"] == host)
            .map(|e| e["status"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// Creates an inventory of local hosts, each with its own `root` folder variable.
    fn new(hosts: &[&str]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let mut inventory = String::from("[local]\n");
        for host in hosts {
            let root = dir.path().join(host);
            std::fs::create_dir_all(&root).unwrap();
            inventory.push_str(&format!(
                "{host} ansible_connection=local root={}\n",
                root.display()
            ));
        }
        std::fs::write(dir.path().join("inventory.ini"), inventory).unwrap();
        Project { dir }
    }

    fn root(&self, host: &str) -> PathBuf {
        self.dir.path().join(host)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn apply(&self, playbook: &str, extra: &[&str]) -> Run {
        std::fs::write(self.dir.path().join("site.yaml"), playbook).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_vpsforge"))
            .current_dir(self.dir.path())
            .args([
                "apply",
                "-i",
                "inventory.ini",
                "site.yaml",
                "--format",
                "json",
            ])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        Run {
            code: output.status.code().unwrap_or(-1),
            events: stdout
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
            stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

const CONVERGE: &str = r#"
- hosts: local
  gather_facts: false
  vars:
    greeting: hello
  tasks:
    - name: write config
      copy:
        dest: "{{ root }}/app.conf"
        content: "greeting={{ greeting }}\nport=80\n"
        mode: "0640"
        force: false
      notify: note reload
    - name: set port
      lineinfile:
        path: "{{ root }}/app.conf"
        regexp: '^port='
        line: port=8080
    - name: make folders
      file:
        path: "{{ root }}/{{ item }}"
        state: directory
      loop: [a, b]
  handlers:
    - name: note reload
      shell: echo reloaded >> "{{ root }}/handler.log"
"#;

#[test]
fn check_apply_check_apply_converges() {
    let project = Project::new(&["one"]);
    let config = project.root("one").join("app.conf");

    let check = project.apply(CONVERGE, &["--check"]);
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
    assert!(check.recap("one", "changed") >= 3, "{}", check.stdout);
    assert!(!config.exists(), "--check must not write files");

    let apply = project.apply(CONVERGE, &[]);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert!(apply.recap("one", "changed") >= 4, "{}", apply.stdout);
    // The first probe batch, then each change carrying the probes that follow it,
    // then the handler: the changes need no probe commands of their own.
    assert_eq!(apply.recap("one", "commands"), 6, "{}", apply.stdout);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "greeting=hello\nport=8080\n"
    );
    assert_eq!(
        std::fs::read_to_string(project.root("one").join("handler.log")).unwrap(),
        "reloaded\n"
    );

    let recheck = project.apply(CONVERGE, &["--check", "--detailed-exitcode"]);
    assert_eq!(recheck.code, 0, "{}\n{}", recheck.stdout, recheck.stderr);
    assert_eq!(recheck.recap("one", "changed"), 0, "{}", recheck.stdout);

    // On a converged host every probe goes out in one batch, so each run is one command.
    assert_eq!(recheck.recap("one", "commands"), 1, "{}", recheck.stdout);

    let reapply = project.apply(CONVERGE, &["--detailed-exitcode"]);
    assert_eq!(reapply.code, 0, "{}", reapply.stdout);
    assert_eq!(reapply.recap("one", "changed"), 0, "{}", reapply.stdout);
    assert_eq!(reapply.recap("one", "commands"), 1, "{}", reapply.stdout);
    assert_eq!(
        std::fs::read_to_string(project.root("one").join("handler.log")).unwrap(),
        "reloaded\n"
    );
}

#[test]
fn detailed_exitcode_reports_drift() {
    let project = Project::new(&["one"]);
    project.apply(CONVERGE, &[]);
    std::fs::write(project.root("one").join("app.conf"), "edited by hand\n").unwrap();

    let check = project.apply(CONVERGE, &["--check", "--detailed-exitcode"]);

    assert_eq!(check.code, 2, "{}", check.stdout);
    assert_eq!(check.task_status("set port", "one"), vec!["changed"]);
    assert_eq!(
        std::fs::read_to_string(project.root("one").join("app.conf")).unwrap(),
        "edited by hand\n"
    );
}

#[test]
fn failed_host_does_not_stop_others() {
    let project = Project::new(&["good", "bad"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - name: break one host
      command: /bin/false
      when: inventory_hostname == 'bad'
    - name: keep going
      copy: { dest: "{{ root }}/done", content: "yes\n" }
"#;

    let run = project.apply(playbook, &[]);

    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.recap("bad", "failed"), 1);
    assert_eq!(run.recap("good", "failed"), 0);
    assert_eq!(run.task_status("keep going", "good"), vec!["changed"]);
    assert!(
        run.task_status("keep going", "bad").is_empty(),
        "a failed host leaves the play"
    );
    assert!(project.root("good").join("done").exists());
    assert!(!project.root("bad").join("done").exists());
}

#[test]
fn handler_runs_after_later_failure() {
    let project = Project::new(&["one"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - copy: { dest: "{{ root }}/conf", content: "v2\n" }
      notify: reload
    - command: /bin/false
  handlers:
    - name: reload
      shell: echo reloaded > "{{ root }}/reloaded"
"#;

    let run = project.apply(playbook, &[]);

    assert_eq!(run.code, 1);
    assert_eq!(run.recap("one", "failed"), 1);
    assert!(
        project.root("one").join("reloaded").exists(),
        "{}",
        run.stdout
    );
}

#[test]
fn block_rescue_always() {
    let project = Project::new(&["one"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - block:
        - command: /bin/false
        - copy: { dest: "{{ root }}/not-reached", content: "x" }
      rescue:
        - copy: { dest: "{{ root }}/rescued", content: "x" }
      always:
        - copy: { dest: "{{ root }}/always", content: "x" }
"#;

    let run = project.apply(playbook, &[]);

    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.recap("one", "rescued"), 1);
    assert_eq!(run.recap("one", "failed"), 0);
    assert!(project.root("one").join("rescued").exists());
    assert!(project.root("one").join("always").exists());
    assert!(!project.root("one").join("not-reached").exists());
}

#[test]
fn register_loop_and_assert() {
    let project = Project::new(&["one"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - shell: "echo {{ item }}"
      loop: [red, green]
      register: colours
      changed_when: false
    - set_fact:
        joined: "{{ colours.results | map(attribute='stdout') | join(',') }}"
    - assert:
        that:
          - joined == 'red,green'
          - colours is not changed
          - "'no' | bool == false"
    - debug: { msg: "unreached" }
      when: joined is not defined
"#;

    let run = project.apply(playbook, &[]);

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.recap("one", "failed"), 0);
    assert_eq!(run.recap("one", "skipped"), 1);
}

#[test]
fn no_log_hides_secrets_everywhere() {
    let project = Project::new(&["one"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  vars:
    db_password: "S3cr3t-Value-42"
  tasks:
    - copy: { dest: "{{ root }}/secret", content: "{{ db_password }}\n" }
      no_log: true
    - debug: { msg: "the password is {{ db_password }}" }
    - shell: "echo {{ db_password }} && exit 3"
"#;

    let run = project.apply(playbook, &["--diff", "-vvv"]);

    assert_eq!(run.code, 1, "the last task fails on purpose");
    assert!(!run.stdout.contains("S3cr3t-Value-42"), "{}", run.stdout);
    assert!(!run.stderr.contains("S3cr3t-Value-42"), "{}", run.stderr);
    assert!(run.stdout.contains("********"), "{}", run.stdout);
}

#[test]
fn tags_select_tasks() {
    let project = Project::new(&["one"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - copy: { dest: "{{ root }}/tagged", content: "x" }
      tags: [web]
    - copy: { dest: "{{ root }}/untagged", content: "x" }
    - copy: { dest: "{{ root }}/always", content: "x" }
      tags: [always]
"#;

    let run = project.apply(playbook, &["--tags", "web"]);

    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(project.root("one").join("tagged").exists());
    assert!(!project.root("one").join("untagged").exists());
    assert!(project.root("one").join("always").exists());
    let _ = project.path();
}

#[test]
fn environment_reaches_commands() {
    let project = Project::new(&["one"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  environment:
    PLAY_LEVEL: from-play
  tasks:
    - shell: echo "$PLAY_LEVEL $TASK_LEVEL" > "{{ root }}/env"
      environment:
        TASK_LEVEL: "it's {{ 'quoted' }}"
"#;

    let run = project.apply(playbook, &[]);

    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        std::fs::read_to_string(project.root("one").join("env")).unwrap(),
        "from-play it's quoted\n"
    );
}

#[test]
fn any_errors_fatal_stops_every_host() {
    let project = Project::new(&["first", "second"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - command: /bin/false
      when: inventory_hostname == 'first'
    - copy: { dest: "{{ root }}/after", content: "x" }
"#;

    let run = project.apply(playbook, &[]);

    assert_eq!(run.code, 1);
    assert!(
        !project.root("second").join("after").exists(),
        "{}",
        run.stdout
    );
}

#[test]
fn end_play_ends_only_current_play() {
    let project = Project::new(&["one"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - meta: end_play
    - copy: { dest: "{{ root }}/first", content: "x" }
- hosts: local
  gather_facts: false
  tasks:
    - copy: { dest: "{{ root }}/second", content: "x" }
"#;

    let run = project.apply(playbook, &[]);

    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!project.root("one").join("first").exists());
    assert!(project.root("one").join("second").exists());
}

#[test]
fn rescue_and_run_once_register() {
    let project = Project::new(&["first", "second"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - command: echo shared-token
      register: token
      run_once: true
      changed_when: false
    - copy: { dest: "{{ root }}/token", content: "{{ token.stdout }}\n" }
    - block:
        - name: break on purpose
          command: /bin/false
      rescue:
        - copy: { dest: "{{ root }}/failed-task", content: "{{ ansible_failed_task.name }} rc={{ ansible_failed_result.rc }}\n" }
"#;

    let run = project.apply(playbook, &[]);

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for host in ["first", "second"] {
        assert_eq!(
            std::fs::read_to_string(project.root(host).join("token")).unwrap(),
            "shared-token\n"
        );
        assert_eq!(
            std::fs::read_to_string(project.root(host).join("failed-task")).unwrap(),
            "break on purpose rc=1\n"
        );
    }
}

#[test]
fn string_false_condition_skips() {
    let project = Project::new(&["one"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - copy: { dest: "{{ root }}/flagged", content: "{{ greeting }}\n" }
      when: flag
"#;

    let run = project.apply(playbook, &["-e", "flag=false greeting=hi"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!project.root("one").join("flagged").exists());

    let run = project.apply(playbook, &["-e", "flag=yes greeting=hi"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        std::fs::read_to_string(project.root("one").join("flagged")).unwrap(),
        "hi\n"
    );
}

#[test]
fn role_defaults_visible_to_play_tasks() {
    let project = Project::new(&["one"]);
    std::fs::create_dir_all(project.path().join("roles/web/defaults")).unwrap();
    std::fs::create_dir_all(project.path().join("roles/web/tasks")).unwrap();
    std::fs::write(
        project.path().join("roles/web/defaults/main.yml"),
        "web_port: 8080\n",
    )
    .unwrap();
    std::fs::write(
        project.path().join("roles/web/tasks/main.yml"),
        "- debug: { msg: \"{{ web_port }}\" }\n",
    )
    .unwrap();
    let playbook = r#"
- hosts: local
  gather_facts: false
  roles: [web]
  post_tasks:
    - copy: { dest: "{{ root }}/port", content: "{{ web_port }}\n" }
"#;

    let run = project.apply(playbook, &[]);

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        std::fs::read_to_string(project.root("one").join("port")).unwrap(),
        "8080\n"
    );
}

#[test]
fn limit_matching_nothing_is_an_error() {
    let project = Project::new(&["one"]);
    let run = project.apply("- hosts: local\n  tasks: []\n", &["--limit", "nosuch"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("the limit `nosuch` matches no host"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_error_exits_with_one() {
    let project = Project::new(&["one"]);
    let run = project.apply("- hosts: local\n  tasks: []\n", &["--chek"]);
    assert_eq!(
        run.code, 1,
        "2 would read as `changed` under --detailed-exitcode"
    );
}

#[test]
fn template_gaps_end_to_end() {
    let project = Project::new(&["one", "two"]);
    std::fs::create_dir_all(project.path().join("files")).unwrap();
    std::fs::write(project.path().join("files/motd.txt"), "from files\n").unwrap();
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - copy:
        dest: "{{ root }}/out.txt"
        content: |
          peer={{ hostvars['two'].root }}
          peer_name={{ hostvars['two'].inventory_hostname }}
          managed={{ ansible_managed }}
          motd={{ lookup('file', 'motd.txt') }}
          raw={{ raw }}
          fallback={{ nope.attr | default('A') }}
      vars:
        raw: !unsafe "{{ not_a_template }}"
    - debug:
        msg: unreached
      when: nope.attr is defined
"#;

    let run = project.apply(playbook, &[]);

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let written = std::fs::read_to_string(project.root("one").join("out.txt")).unwrap();
    let expected = format!(
        "peer={}\npeer_name=two\nmanaged=Managed by vpsforge: do not edit by hand\nmotd=from files\nraw={{{{ not_a_template }}}}\nfallback=A\n",
        project.root("two").display()
    );
    assert_eq!(written, expected);
    assert_eq!(run.recap("one", "skipped"), 1);
}

#[test]
fn same_probe_shared_by_tasks() {
    let project = Project::new(&["one"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - name: first look
      stat:
        path: "{{ root }}"
      register: first
    - name: create a folder
      file:
        path: "{{ root }}/data"
        state: directory
    - name: second look
      stat:
        path: "{{ root }}"
      register: second
    - name: third look
      stat:
        path: "{{ root }}"
      register: third
"#;
    let first = project.apply(playbook, &[]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    // One batch of probes, then the mkdir with the probes of the tasks after it: they
    // read the host after the change, and the second and third look share one probe.
    assert_eq!(first.recap("one", "commands"), 2, "{}", first.stdout);

    let again = project.apply(playbook, &[]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(again.recap("one", "changed"), 0, "{}", again.stdout);
    assert_eq!(again.recap("one", "commands"), 1, "{}", again.stdout);
}

#[test]
fn until_reads_the_host_again() {
    let project = Project::new(&["one"]);
    // The file appears about a second after the first look, so the task needs a
    // retry that reads the host again instead of a cached probe result.
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - name: create the file later
      shell: (sleep 1; touch "{{ root }}/ready") >/dev/null 2>&1 </dev/null &
    - name: wait for the file
      stat:
        path: "{{ root }}/ready"
      register: ready
      until: ready.stat.exists
      retries: 30
      delay: 1
"#;
    let run = project.apply(playbook, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.task_status("wait for the file", "one"),
        ["ok"],
        "{}",
        run.stdout
    );
}

#[test]
fn facts_and_first_probes_share_one_command() {
    let project = Project::new(&["one"]);
    let plain = r#"
- hosts: local
  tasks:
    - name: write a file
      copy:
        dest: "{{ root }}/plain.txt"
        content: "plain\n"
    - name: make a folder
      file:
        path: "{{ root }}/data"
        state: directory
"#;
    let first = project.apply(plain, &[]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let again = project.apply(plain, &["--check"]);
    assert_eq!(again.recap("one", "changed"), 0, "{}", again.stdout);
    assert_eq!(again.recap("one", "commands"), 1, "{}", again.stdout);

    // A task that needs a fact to render is left out of the facts batch and probes
    // when it runs, with the facts in place.
    let with_fact = r#"
- hosts: local
  tasks:
    - name: write a file
      copy:
        dest: "{{ root }}/plain.txt"
        content: "plain\n"
    - name: write the system name
      copy:
        dest: "{{ root }}/system.txt"
        content: "{{ ansible_system }}\n"
"#;
    let first = project.apply(with_fact, &[]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert_eq!(
        std::fs::read_to_string(project.root("one").join("system.txt")).unwrap(),
        "Linux\n"
    );
    let again = project.apply(with_fact, &["--check"]);
    assert_eq!(again.recap("one", "changed"), 0, "{}", again.stdout);
    assert_eq!(again.recap("one", "commands"), 2, "{}", again.stdout);
}

#[test]
fn read_only_commands_run_like_probes() {
    let project = Project::new(&["one"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - name: write the version
      copy:
        dest: "{{ root }}/version"
        content: "{{ version }}\n"
    - name: read the version
      command: cat "{{ root }}/version"
      register: seen
      changed_when: false
      check_mode: false
    - name: read the size
      shell: wc -c < "{{ root }}/version"
      register: count
      changed_when: false
      check_mode: false
    - name: record what was read
      copy:
        dest: "{{ root }}/seen"
        content: "{{ seen.stdout }} {{ count.stdout | trim }}\n"
    - name: make a folder
      file:
        path: "{{ root }}/data"
        state: directory
"#;
    let first = project.apply(playbook, &["-e", "version=1"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    // The reads ran after the version was written, though they went out with it.
    assert_eq!(
        std::fs::read_to_string(project.root("one").join("seen")).unwrap(),
        "1 2\n"
    );

    let again = project.apply(playbook, &["-e", "version=1", "--check"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(again.recap("one", "changed"), 0, "{}", again.stdout);
    // The two reads go out with the first probes. The record task renders from what
    // they read, so its probe goes out after them: two commands, not four.
    assert_eq!(again.recap("one", "commands"), 2, "{}", again.stdout);

    let changed = project.apply(playbook, &["-e", "version=2"]);
    assert_eq!(changed.code, 0, "{}\n{}", changed.stdout, changed.stderr);
    assert_eq!(
        std::fs::read_to_string(project.root("one").join("seen")).unwrap(),
        "2 2\n"
    );
}

#[test]
fn changing_command_not_read_ahead() {
    let project = Project::new(&["one"]);
    // Without `check_mode: false`, `changed_when: false` does not make a command
    // read-only, so it is not read ahead: it runs once, at its turn, even though the
    // task before it changes the host and would empty a read-ahead result.
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - name: write a file
      copy:
        dest: "{{ root }}/file"
        content: "x\n"
    - name: count the runs
      shell: echo run >> "{{ root }}/runs"
      changed_when: false
"#;
    let first = project.apply(playbook, &[]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert_eq!(
        std::fs::read_to_string(project.root("one").join("runs")).unwrap(),
        "run\n"
    );
}

/// Writes an inventory in which `names` are local hosts sharing the folder `shared`:
/// several inventory names for one machine, as when one server is both the `web` and
/// the `db` host.
fn alias_project(names: &[&str]) -> Project {
    let project = Project::new(&[]);
    let shared = project.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let mut inventory = String::from("[local]\n");
    for name in names {
        inventory.push_str(&format!(
            "{name} ansible_connection=local root={}\n",
            shared.display()
        ));
    }
    std::fs::write(project.path().join("inventory.ini"), inventory).unwrap();
    project
}

#[test]
fn aliases_see_each_others_changes() {
    let project = alias_project(&["web", "db"]);
    // The facts batch reads `db`'s probe of the file before `web` writes it. Ansible
    // runs the tasks in lockstep, so `db` finds the file.
    let playbook = r#"
- hosts: local
  tasks:
    - name: write on web
      copy:
        dest: "{{ root }}/flag"
        content: "web\n"
      when: inventory_hostname == 'web'
    - name: look
      stat:
        path: "{{ root }}/flag"
      register: flag
    - name: check
      assert:
        that: flag.stat.exists
"#;
    let run = project.apply(playbook, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.task_status("check", "web"), ["ok"], "{}", run.stdout);
    assert_eq!(run.task_status("check", "db"), ["ok"], "{}", run.stdout);
}

#[test]
fn aliases_see_changes_of_earlier_plays() {
    let project = alias_project(&["web", "db"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - name: first look
      stat:
        path: "{{ root }}/flag"
- hosts: web
  gather_facts: false
  tasks:
    - name: write on web
      copy:
        dest: "{{ root }}/flag"
        content: "web\n"
- hosts: db
  gather_facts: false
  tasks:
    - name: look
      stat:
        path: "{{ root }}/flag"
      register: flag
    - name: check
      assert:
        that: flag.stat.exists
"#;
    let run = project.apply(playbook, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.task_status("check", "db"), ["ok"], "{}", run.stdout);
}

#[test]
fn changing_loop_reads_next_item_only() {
    let project = Project::new(&["one"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - name: make folders
      file:
        path: "{{ root }}/{{ item }}"
        state: directory
      loop: "{{ range(12) | list }}"
    - name: after the loop
      file:
        path: "{{ root }}/after"
        state: directory
"#;
    let first = project.apply(playbook, &["-vvv"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    // The first batch, then one command per change: each carries only the next
    // item's probe, and the last item carries the task after the loop.
    assert_eq!(first.recap("one", "commands"), 14, "{}", first.stdout);
    // The probes carried by the changes: one per item after the first, and the
    // task after the loop once.
    let carried: usize = first
        .stderr
        .lines()
        .filter(|line| line.contains("running a change with a probe batch"))
        .filter_map(|line| line.split("probes=").nth(1))
        .filter_map(|count| count.split_whitespace().next()?.parse::<usize>().ok())
        .sum();
    assert_eq!(carried, 12, "{}", first.stderr);

    let again = project.apply(playbook, &[]);
    assert_eq!(again.recap("one", "changed"), 0, "{}", again.stdout);
    assert_eq!(again.recap("one", "commands"), 1, "{}", again.stdout);
}

#[test]
fn play_host_lists_follow_play_and_batch() {
    let project = Project::new(&["one", "two"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  serial: 1
  tasks:
    - copy:
        dest: "{{ root }}/first.txt"
        content: |
          play={{ ansible_play_hosts | join(',') }}
          all={{ ansible_play_hosts_all | join(',') }}
          batch={{ ansible_play_batch | join(',') }}
          groups={{ groups['local'] | join(',') }}
          self={{ hostvars[inventory_hostname].root == root }}
- hosts: two
  gather_facts: false
  tasks:
    - copy:
        dest: "{{ root }}/second.txt"
        content: "play={{ play_hosts | join(',') }} batch={{ ansible_play_batch | join(',') }}\n"
"#;

    let run = project.apply(playbook, &[]);

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for host in ["one", "two"] {
        let first = std::fs::read_to_string(project.root(host).join("first.txt")).unwrap();
        assert_eq!(
            first,
            format!("play=one,two\nall=one,two\nbatch={host}\ngroups=one,two\nself=True\n"),
            "host {host}"
        );
    }
    let second = std::fs::read_to_string(project.root("two").join("second.txt")).unwrap();
    assert_eq!(second, "play=two batch=two\n");
    assert!(!project.root("one").join("second.txt").exists());
}

#[test]
fn apply_raises_open_files_limit() {
    use std::os::unix::process::CommandExt;

    let project = Project::new(&["one"]);
    let playbook = r#"
- hosts: local
  gather_facts: false
  tasks:
    - command: sh -c 'ulimit -Sn; ulimit -Hn'
      register: limits
      changed_when: false
    - copy:
        dest: "{{ root }}/limits.txt"
        content: "{{ limits.stdout }}\n"
"#;
    std::fs::write(project.path().join("site.yaml"), playbook).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_vpsforge"));
    command
        .current_dir(project.path())
        .args(["apply", "-i", "inventory.ini", "site.yaml"]);
    // SAFETY: the closure runs in the child before exec and only calls setrlimit.
    unsafe {
        command.pre_exec(|| {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit.rlim_cur = 64.min(limit.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }

    let output = command.output().unwrap();

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let limits = std::fs::read_to_string(project.root("one").join("limits.txt")).unwrap();
    let lines: Vec<&str> = limits.lines().collect();
    assert_eq!(lines.len(), 2, "{limits}");
    assert_eq!(
        lines[0], lines[1],
        "soft limit not raised to the hard limit"
    );
    assert_ne!(lines[0], "64");
}
