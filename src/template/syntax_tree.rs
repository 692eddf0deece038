//! Walks minijinja's syntax tree, for the two things that need more than the
//! compiled template: guarded lookups such as `missing.attr | default('x')`, and
//! the filter, test, function and lookup names that a playbook check validates.
//!
//! The tree comes from minijinja's `unstable_machinery` feature, which has no
//! semver guarantee, so this is the one file that depends on its shape.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex};

use minijinja::machinery::ast::{CallArg, CallType, Expr, Stmt};
use minijinja::machinery::{parse, parse_expr};
use minijinja::syntax::SyntaxConfig;

/// The function that a guarded lookup is rewritten to call.
pub(super) const CHAIN_FUNCTION: &str = "__vpsforge_chain";

/// Parses a template, or returns `None` when it does not parse (rendering reports why).
fn with_template<T>(
    text: &str,
    syntax: &SyntaxConfig,
    f: impl FnOnce(&Stmt<'_>) -> T,
) -> Option<T> {
    let stmt = parse(text, "<template>", syntax.clone()).ok()?;
    Some(f(&stmt))
}

/// Calls `visit` on every expression of `stmt`, outer expressions first.
fn walk_stmt<'a>(stmt: &Stmt<'a>, visit: &mut dyn FnMut(&Expr<'a>)) {
    let body = |stmts: &[Stmt<'a>], visit: &mut dyn FnMut(&Expr<'a>)| {
        for stmt in stmts {
            walk_stmt(stmt, visit);
        }
    };
    match stmt {
        Stmt::Template(node) => body(&node.children, visit),
        Stmt::EmitExpr(node) => walk_expr(&node.expr, visit),
        Stmt::EmitRaw(_) | Stmt::Continue(_) | Stmt::Break(_) => {}
        Stmt::ForLoop(node) => {
            walk_expr(&node.target, visit);
            walk_expr(&node.iter, visit);
            if let Some(filter) = &node.filter_expr {
                walk_expr(filter, visit);
            }
            body(&node.body, visit);
            body(&node.else_body, visit);
        }
        Stmt::IfCond(node) => {
            walk_expr(&node.expr, visit);
            body(&node.true_body, visit);
            body(&node.false_body, visit);
        }
        Stmt::WithBlock(node) => {
            for (target, value) in &node.assignments {
                walk_expr(target, visit);
                walk_expr(value, visit);
            }
            body(&node.body, visit);
        }
        Stmt::Set(node) => {
            walk_expr(&node.target, visit);
            walk_expr(&node.expr, visit);
        }
        Stmt::SetBlock(node) => {
            walk_expr(&node.target, visit);
            if let Some(filter) = &node.filter {
                walk_expr(filter, visit);
            }
            body(&node.body, visit);
        }
        Stmt::AutoEscape(node) => {
            walk_expr(&node.enabled, visit);
            body(&node.body, visit);
        }
        Stmt::FilterBlock(node) => {
            walk_expr(&node.filter, visit);
            body(&node.body, visit);
        }
        Stmt::Block(node) => body(&node.body, visit),
        Stmt::Import(node) => {
            walk_expr(&node.expr, visit);
            walk_expr(&node.name, visit);
        }
        Stmt::FromImport(node) => walk_expr(&node.expr, visit),
        Stmt::Extends(node) => walk_expr(&node.name, visit),
        Stmt::Include(node) => walk_expr(&node.name, visit),
        Stmt::Macro(node) => {
            for default in &node.defaults {
                walk_expr(default, visit);
            }
            body(&node.body, visit);
        }
        Stmt::CallBlock(node) => {
            walk_call_args(&node.call.args, visit);
            body(&node.macro_decl.body, visit);
        }
        Stmt::Do(node) => {
            walk_expr(&node.call.expr, visit);
            walk_call_args(&node.call.args, visit);
        }
    }
}

fn walk_call_args<'a>(args: &[CallArg<'a>], visit: &mut dyn FnMut(&Expr<'a>)) {
    for arg in args {
        match arg {
            CallArg::Pos(expr)
            | CallArg::Kwarg(_, expr)
            | CallArg::PosSplat(expr)
            | CallArg::KwargSplat(expr) => walk_expr(expr, visit),
        }
    }
}

fn walk_expr<'a>(expr: &Expr<'a>, visit: &mut dyn FnMut(&Expr<'a>)) {
    visit(expr);
    match expr {
        Expr::Var(_) | Expr::Const(_) => {}
        Expr::Slice(node) => {
            walk_expr(&node.expr, visit);
            for part in [&node.start, &node.stop, &node.step].into_iter().flatten() {
                walk_expr(part, visit);
            }
        }
        Expr::UnaryOp(node) => walk_expr(&node.expr, visit),
        Expr::BinOp(node) => {
            walk_expr(&node.left, visit);
            walk_expr(&node.right, visit);
        }
        Expr::Compare(node) => {
            walk_expr(&node.expr, visit);
            for op in &node.ops {
                walk_expr(&op.expr, visit);
            }
        }
        Expr::IfExpr(node) => {
            walk_expr(&node.test_expr, visit);
            walk_expr(&node.true_expr, visit);
            if let Some(false_expr) = &node.false_expr {
                walk_expr(false_expr, visit);
            }
        }
        Expr::Filter(node) => {
            if let Some(inner) = &node.expr {
                walk_expr(inner, visit);
            }
            walk_call_args(&node.args, visit);
        }
        Expr::Test(node) => {
            walk_expr(&node.expr, visit);
            walk_call_args(&node.args, visit);
        }
        Expr::GetAttr(node) => walk_expr(&node.expr, visit),
        Expr::GetItem(node) => {
            walk_expr(&node.expr, visit);
            walk_expr(&node.subscript_expr, visit);
        }
        Expr::Call(node) => {
            walk_expr(&node.expr, visit);
            walk_call_args(&node.args, visit);
        }
        Expr::List(node) => node.items.iter().for_each(|item| walk_expr(item, visit)),
        Expr::Tuple(node) => node.items.iter().for_each(|item| walk_expr(item, visit)),
        Expr::Map(node) => {
            for (key, value) in node.keys.iter().zip(&node.values) {
                walk_expr(key, visit);
                walk_expr(value, visit);
            }
        }
    }
}

/// A template whose guarded lookups no longer fail on an undefined parent, with the edits,
/// to map error positions back to the text the user wrote.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Rewrite {
    pub text: String,
    /// Pairs of a byte range in the rewritten text and the range it replaced.
    edits: Vec<(Range<usize>, Range<usize>)>,
}

impl Rewrite {
    /// Maps a byte offset in the rewritten text to the original text. An offset inside
    /// a rewritten lookup maps to the start of that lookup.
    pub fn original_offset(&self, offset: usize) -> usize {
        let mut shift: isize = 0;
        for (rewritten, original) in &self.edits {
            if offset < rewritten.start {
                break;
            }
            if offset < rewritten.end {
                return original.start;
            }
            shift = original.end as isize - rewritten.end as isize;
        }
        offset.saturating_add_signed(shift)
    }
}

/// Rewrites every lookup chain whose undefined parent Ansible tolerates (the subject
/// of a `default` filter or a `defined`/`undefined` test) into a call of [`CHAIN_FUNCTION`].
///
/// minijinja's strict mode fails on `missing.attr` before `default` runs, while
/// Ansible's undefined values chain. Rewriting only these subjects keeps every other
/// use of an undefined value an error. Returns `None` when nothing needs rewriting.
pub(super) fn rewrite_guarded(
    text: &str,
    syntax: &SyntaxConfig,
    is_expression: bool,
) -> Option<Arc<Rewrite>> {
    if !(text.contains("default") || text.contains("defined") || text.contains("d(")) {
        return None;
    }
    // Every environment of the process uses the same syntax settings, so the text
    // alone identifies the result. Like minijinja's template cache, this keeps
    // every distinct template of the run.
    static CACHE: LazyLock<Mutex<RewriteCache>> = LazyLock::new(Mutex::default);
    let key = (text.to_string(), is_expression);
    if let Some(cached) = CACHE.lock().ok()?.get(&key) {
        return cached.clone();
    }
    let rewrite = rewrite_uncached(text, syntax, is_expression).map(Arc::new);
    if let Ok(mut cache) = CACHE.lock() {
        cache.insert(key, rewrite.clone());
    }
    rewrite
}

type RewriteCache = HashMap<(String, bool), Option<Arc<Rewrite>>>;

fn rewrite_uncached(text: &str, syntax: &SyntaxConfig, is_expression: bool) -> Option<Rewrite> {
    let mut chains = Vec::new();
    let mut collect = |expr: &Expr<'_>| {
        let subject = match expr {
            Expr::Filter(node)
                if matches!(node.name, "default" | "d" | "ansible.builtin.default") =>
            {
                node.expr.as_ref()
            }
            Expr::Test(node) if matches!(node.name, "defined" | "undefined") => Some(&node.expr),
            _ => None,
        };
        if let Some(chain) = subject.and_then(|subject| guarded_chain(text, subject)) {
            chains.push(chain);
        }
    };
    if is_expression {
        let expr = parse_expr(text).ok()?;
        walk_expr(&expr, &mut collect);
    } else {
        with_template(text, syntax, |stmt| walk_stmt(stmt, &mut collect))?;
    }
    if chains.is_empty() {
        return None;
    }

    chains.sort_by_key(|chain| chain.range.start);
    let mut rewritten = String::with_capacity(text.len() + chains.len() * 32);
    let mut edits = Vec::new();
    let mut copied = 0;
    for chain in chains {
        // Chains nested inside an already rewritten one (in a subscript) stay as written.
        if chain.range.start < copied {
            continue;
        }
        rewritten.push_str(&text[copied..chain.range.start]);
        let start = rewritten.len();
        rewritten.push_str(&chain.replacement);
        edits.push((start..rewritten.len(), chain.range.clone()));
        copied = chain.range.end;
    }
    rewritten.push_str(&text[copied..]);
    Some(Rewrite {
        text: rewritten,
        edits,
    })
}

struct Chain {
    range: Range<usize>,
    replacement: String,
}

/// Returns the rewrite of `expr` when it is a variable followed by at least one
/// attribute or item lookup (`a.b`, `a['b'].c`).
fn guarded_chain(text: &str, expr: &Expr<'_>) -> Option<Chain> {
    let end = span_range(expr)?.end;
    let mut keys = Vec::new();
    let mut node = expr;
    loop {
        match node {
            Expr::GetAttr(attr) => {
                keys.push(format!("'{}'", attr.name));
                node = &attr.expr;
            }
            Expr::GetItem(item) => {
                keys.push(text.get(span_range(&item.subscript_expr)?)?.to_string());
                node = &item.expr;
            }
            Expr::Var(var) if !keys.is_empty() => {
                let start = var.span().start_offset as usize;
                // A parenthesised root would leave its brackets unbalanced.
                if text.get(start..start + var.id.len())? != var.id {
                    return None;
                }
                keys.reverse();
                return Some(Chain {
                    range: start..end,
                    replacement: format!("{CHAIN_FUNCTION}({}, {})", var.id, keys.join(", ")),
                });
            }
            _ => return None,
        }
    }
}

fn span_range(expr: &Expr<'_>) -> Option<Range<usize>> {
    let span = match expr {
        Expr::Var(node) => node.span(),
        Expr::Const(node) => node.span(),
        Expr::Slice(node) => node.span(),
        Expr::UnaryOp(node) => node.span(),
        Expr::BinOp(node) => node.span(),
        Expr::Compare(node) => node.span(),
        Expr::IfExpr(node) => node.span(),
        Expr::Filter(node) => node.span(),
        Expr::Test(node) => node.span(),
        Expr::GetAttr(node) => node.span(),
        Expr::GetItem(node) => node.span(),
        Expr::Call(node) => node.span(),
        Expr::List(node) => node.span(),
        Expr::Tuple(node) => node.span(),
        Expr::Map(node) => node.span(),
    };
    Some(span.start_offset as usize..span.end_offset as usize)
}
/// The filters, tests, functions and lookup plugins that a template uses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UsedNames {
    pub filters: BTreeSet<String>,
    pub tests: BTreeSet<String>,
    pub functions: BTreeSet<String>,
    /// Plugin names given as a literal first argument of `lookup`, `query` or `q`.
    pub lookups: BTreeSet<String>,
}

/// Collects the names that `text` uses, or returns the syntax error minijinja reports.
pub(super) fn used_names(
    text: &str,
    syntax: &SyntaxConfig,
    is_expression: bool,
) -> Result<UsedNames, minijinja::Error> {
    let mut names = UsedNames::default();
    // Macros and variables set inside the template are called like functions.
    let mut local = BTreeSet::new();
    let mut collect = |expr: &Expr<'_>| match expr {
        Expr::Filter(node) => {
            names.filters.insert(node.name.to_string());
        }
        Expr::Test(node) => {
            names.tests.insert(node.name.to_string());
        }
        Expr::Call(node) => {
            if let CallType::Function(name) = node.identify_call() {
                names.functions.insert(name.to_string());
                if matches!(name, "lookup" | "query" | "q") {
                    if let Some(CallArg::Pos(Expr::Const(plugin))) = node.args.first() {
                        if let Some(plugin) = plugin.value.as_str() {
                            names.lookups.insert(plugin.to_string());
                        }
                    }
                }
            }
        }
        _ => {}
    };
    if is_expression {
        let expr = parse_expr(text)?;
        walk_expr(&expr, &mut collect);
    } else {
        let stmt = parse(text, "<template>", syntax.clone())?;
        collect_local_names(&stmt, &mut local);
        walk_stmt(&stmt, &mut collect);
    }
    names.functions.retain(|name| !local.contains(name));
    Ok(names)
}

/// Collects the names of macros and of variables that `{% set %}` assigns.
fn collect_local_names(stmt: &Stmt<'_>, local: &mut BTreeSet<String>) {
    let mut children: Vec<&[Stmt<'_>]> = Vec::new();
    match stmt {
        Stmt::Template(node) => children.push(&node.children),
        Stmt::Macro(node) => {
            local.insert(node.name.to_string());
            children.push(&node.body);
        }
        Stmt::Set(node) => {
            if let Expr::Var(var) = &node.target {
                local.insert(var.id.to_string());
            }
        }
        Stmt::SetBlock(node) => {
            if let Expr::Var(var) = &node.target {
                local.insert(var.id.to_string());
            }
            children.push(&node.body);
        }
        Stmt::ForLoop(node) => {
            children.push(&node.body);
            children.push(&node.else_body);
        }
        Stmt::IfCond(node) => {
            children.push(&node.true_body);
            children.push(&node.false_body);
        }
        Stmt::WithBlock(node) => children.push(&node.body),
        Stmt::AutoEscape(node) => children.push(&node.body),
        Stmt::FilterBlock(node) => children.push(&node.body),
        Stmt::Block(node) => children.push(&node.body),
        Stmt::CallBlock(node) => {
            local.insert("caller".to_string());
            children.push(&node.macro_decl.body);
        }
        _ => {}
    }
    for stmts in children {
        for child in stmts {
            collect_local_names(child, local);
        }
    }
}
