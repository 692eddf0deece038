//! `template`: renders a Jinja2 template on the controller and writes the result
//! the way `copy` writes `content`.

use super::args::{bool_or, req_str};
use super::common::{file_attrs, opt_validate, FILE_ATTR_PARAMS};
use super::copy::{base_name, find_local_file, CopyAction, Source};
use super::{Action, Args, BuildContext, ModuleError, ModuleKind, ModuleSpec, Param, ParamKind};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "template",
    aliases: &["ansible.builtin.template", "ansible.legacy.template"],
    params: &[
        Param::new("src", ParamKind::Str).required(),
        Param::new("dest", ParamKind::Str).required(),
        Param::new("backup", ParamKind::Bool),
        Param::new("validate", ParamKind::Str),
        Param::new("force", ParamKind::Bool),
        Param::new("follow", ParamKind::Bool),
        FILE_ATTR_PARAMS[0],
        FILE_ATTR_PARAMS[1],
        FILE_ATTR_PARAMS[2],
        FILE_ATTR_PARAMS[3],
        FILE_ATTR_PARAMS[4],
        FILE_ATTR_PARAMS[5],
        FILE_ATTR_PARAMS[6],
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build,
};

fn build(args: &Args, context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    let src = req_str(args, "src")?;
    let dest = req_str(args, "dest")?;
    let template = find_local_file(&src, context.search_paths)?;
    if template.is_dir() {
        return Err(ModuleError::InvalidArgument(format!(
            "argument `src` must be a template file, not the folder `{}`",
            template.display()
        )));
    }
    let rendered = (context.render_template)(&template)?;
    // As in Ansible, a folder `dest` gets the template's own name, `.j2` included.
    let file_name = base_name(&src);

    Ok(Box::new(CopyAction {
        dest,
        source: Source::Bytes(rendered.into_bytes()),
        src: Some(src),
        file_name,
        attrs: file_attrs(args)?,
        directory_mode: None,
        backup: bool_or(args, "backup", false)?,
        validate: opt_validate(args)?,
        force: bool_or(args, "force", true)?,
        follow: bool_or(args, "follow", false)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::common::test_support::{apply_twice, build_with, plan};
    use crate::modules::Plan;
    use serde_json::json;

    fn summaries(plan: &Plan) -> Vec<String> {
        plan.changes
            .iter()
            .map(|change| change.summary.clone())
            .collect()
    }

    #[test]
    fn template_renders_and_compares() {
        let templates = tempfile::tempdir().unwrap();
        std::fs::write(templates.path().join("greeting.j2"), "hello {{ name }}\n").unwrap();
        let search = vec![templates.path().to_path_buf()];
        let action = build_with(
            &SPEC,
            json!({"src": "greeting.j2", "dest": "/etc/greeting"}),
            &search,
        )
        .unwrap();

        // The SHA-256 of "hello world\n", as `sha256sum` prints it.
        let same = "==> dest <==\npath=/etc/greeting\nparent=1\n==> file <==\nkind=regular file\nuid=0\ngid=0\nowner=root\ngroup=root\nmode=644\nsize=12\nmtime=1733300000\ninode=2049:7\nsha256=a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447\ncontent=aGVsbG8gd29ybGQK\n";
        assert!(!plan(action.as_ref(), same).changed());

        let old = "==> dest <==\npath=/etc/greeting\nparent=1\n==> file <==\nkind=regular file\nuid=0\ngid=0\nowner=root\ngroup=root\nmode=644\nsize=3\nmtime=1733300000\ninode=2049:7\nsha256=0\ncontent=aGkK\n";
        let plan = plan(action.as_ref(), old);
        assert_eq!(summaries(&plan), vec!["update `/etc/greeting`"]);
        let diff = plan.changes[0].diff.clone().unwrap();
        assert_eq!(diff.before, "hi\n");
        assert_eq!(diff.after, "hello world\n");
    }

    #[test]
    fn template_missing_source_names_search_paths() {
        let templates = tempfile::tempdir().unwrap();
        let search = vec![templates.path().join("templates")];
        let error = build_with(
            &SPEC,
            json!({"src": "nginx.conf.j2", "dest": "/etc/nginx/nginx.conf"}),
            &search,
        )
        .err()
        .unwrap();
        assert!(
            error
                .to_string()
                .contains("could not find `src` file `nginx.conf.j2`"),
            "{error}"
        );
    }

    #[test]
    fn template_into_folder_keeps_name() {
        let templates = tempfile::tempdir().unwrap();
        std::fs::write(templates.path().join("app.conf.j2"), "name={{ name }}\n").unwrap();
        let dest = tempfile::tempdir().unwrap();
        let search = vec![templates.path().to_path_buf()];
        let args = json!({"src": "app.conf.j2", "dest": format!("{}/", dest.path().display()), "mode": "0600"});
        let action = build_with(&SPEC, args, &search).unwrap();
        let (first, second) = apply_twice(action.as_ref());
        assert!(first.changed());
        assert!(!second.changed(), "{:?}", second.changes);
        assert_eq!(
            std::fs::read_to_string(dest.path().join("app.conf.j2")).unwrap(),
            "name=world\n"
        );
    }
}
