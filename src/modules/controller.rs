//! Modules that run on the controller only: `debug`, `set_fact`, `assert`, `fail`.
//!
//! They need the template engine and the host's variables, so the executor
//! evaluates them itself; these specs only declare their arguments for checking.

use super::{Action, Args, BuildContext, ModuleError, ModuleKind, ModuleSpec, Param, ParamKind};

fn not_remote(_: &Args, _: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    Err(ModuleError::Failed(
        "this module runs on the controller and has no remote action".to_string(),
    ))
}

pub static DEBUG: ModuleSpec = ModuleSpec {
    name: "debug",
    aliases: &["ansible.builtin.debug"],
    params: &[
        Param::new("msg", ParamKind::Raw),
        Param::new("var", ParamKind::Str),
        Param::new("verbosity", ParamKind::Int),
    ],
    free_form: false,
    kind: ModuleKind::Controller,
    build: not_remote,
};

pub static SET_FACT: ModuleSpec = ModuleSpec {
    name: "set_fact",
    aliases: &["ansible.builtin.set_fact"],
    params: &[],
    free_form: false,
    kind: ModuleKind::Controller,
    build: not_remote,
};

pub static ASSERT: ModuleSpec = ModuleSpec {
    name: "assert",
    aliases: &["ansible.builtin.assert"],
    params: &[
        Param::new("that", ParamKind::Raw).required(),
        Param::new("fail_msg", ParamKind::Raw).aliases(&["msg"]),
        Param::new("success_msg", ParamKind::Raw),
        Param::new("quiet", ParamKind::Bool),
    ],
    free_form: false,
    kind: ModuleKind::Controller,
    build: not_remote,
};

pub static FAIL: ModuleSpec = ModuleSpec {
    name: "fail",
    aliases: &["ansible.builtin.fail"],
    params: &[Param::new("msg", ParamKind::Raw)],
    free_form: false,
    kind: ModuleKind::Controller,
    build: not_remote,
};
