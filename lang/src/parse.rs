//! Source text to syntax tree: the pest grammar in grammar.pest, then a walk that builds the AST.

use crate::ast::*;
use crate::diag::Diagnostic;
use pest::iterators::{Pair, Pairs};
use pest::Parser as _;

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
struct SluiceParser;

/// How deeply brackets may nest, and how many operands one expression may have: the parser
/// and the later stages recurse that deep, so a pathological program must not exhaust the stack.
const MAX_NESTING: usize = 128;
const MAX_EXPR_TERMS: usize = 2048;
/// How deeply operators may nest in one expression (`!!x`, `a + b + c`, casts, brackets):
/// every later stage (checker, lowering, both backends) walks an expression recursively.
pub const MAX_EXPR_DEPTH: usize = 256;
/// How many `if`s one `if ... else if ... else` chain may have: the syntax tree nests each
/// in the one before.
pub const MAX_ELSE_IF: usize = 256;

/// What a pre-scan finds before pest sees the text (pest recurses once per nesting level, and
/// reports an unclosed comment only as an unexpected end).
enum Scan {
    Fine,
    /// The first bracket that opens past the nesting limit.
    TooDeep(usize),
    /// Where a `/*` that is never closed starts.
    OpenComment(usize),
}

/// Counts bracket depth outside comments and strings, and finds an unclosed block comment.
fn scan(source: &str) -> Scan {
    #[derive(PartialEq)]
    enum In {
        Code,
        LineComment,
        BlockComment(usize),
        Str,
    }
    let bytes = source.as_bytes();
    let mut state = In::Code;
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let (b, next) = (bytes[i], bytes.get(i + 1).copied());
        match state {
            In::Code => match b {
                b'/' if next == Some(b'/') => state = In::LineComment,
                b'/' if next == Some(b'*') => {
                    state = In::BlockComment(i);
                    i += 1;
                }
                b'"' => state = In::Str,
                b'(' | b'{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Scan::TooDeep(i);
                    }
                }
                b')' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            },
            In::LineComment if b == b'\n' => state = In::Code,
            In::BlockComment(_) if b == b'*' && next == Some(b'/') => {
                state = In::Code;
                i += 1;
            }
            // A string ends at its quote, or (unterminated: pest reports it) at the line's end.
            In::Str if b == b'"' || b == b'\n' => state = In::Code,
            _ => {}
        }
        i += 1;
    }
    match state {
        In::BlockComment(at) => Scan::OpenComment(at),
        _ => Scan::Fine,
    }
}

/// Parses a program. A syntax error is one diagnostic: pest stops at the first.
pub fn parse(source: &str) -> Result<Program, Vec<Diagnostic>> {
    match scan(source) {
        Scan::Fine => {}
        Scan::TooDeep(at) => {
            return Err(vec![Diagnostic::error(
                "E0001",
                "brackets nested too deeply",
            )
            .with_label(
                Span::new(at, at + 1),
                format!("more than {MAX_NESTING} levels"),
            )])
        }
        Scan::OpenComment(at) => {
            return Err(vec![Diagnostic::error(
                "E0001",
                "unterminated block comment",
            )
            .with_label(Span::new(at, at + 2), "this `/*` has no `*/`")
            .with_note("block comments do not nest: the first `*/` ends one")])
        }
    }
    // Detailed errors record the literal tokens expected at the furthest position (`;`, `}`).
    pest::set_error_detail(true);
    let pairs =
        SluiceParser::parse(Rule::program, source).map_err(|e| vec![syntax_error(e, source)])?;
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for pair in pairs.flatten().take(1) {
        for item in pair.into_inner() {
            if item.as_rule() == Rule::EOI {
                continue;
            }
            match build_item(item) {
                Ok(i) => items.push(i),
                Err(d) => errors.push(d),
            }
        }
    }
    if errors.is_empty() {
        Ok(Program { items })
    } else {
        Err(errors)
    }
}

type R<T> = Result<T, Diagnostic>;

fn span(p: &Pair<Rule>) -> Span {
    let s = p.as_span();
    Span::new(s.start(), s.end())
}

/// The span of the character at byte `at`: empty at the end of the text (a span must stay
/// inside the text and on character boundaries).
fn one_char(source: &str, at: usize) -> (usize, usize) {
    let mut start = at.min(source.len());
    while !source.is_char_boundary(start) {
        start -= 1;
    }
    let end = source[start..]
        .chars()
        .next()
        .map_or(start, |c| start + c.len_utf8());
    (start, end)
}

fn syntax_error(e: pest::error::Error<Rule>, source: &str) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let (mut start, mut end) = match e.location {
        InputLocation::Pos(p) => one_char(source, p),
        InputLocation::Span((a, b)) => (a, b),
    };
    let mut tokens: Vec<String> = Vec::new();
    if let Some(pa) = e.parse_attempts() {
        if pa.max_position > start {
            (start, end) = one_char(source, pa.max_position);
            tokens = pa
                .expected_tokens()
                .iter()
                .map(|t| t.to_string())
                .filter(|t| !t.trim().is_empty() && t.len() <= 12 && t != "//" && t != "/*")
                .map(|t| format!("`{t}`"))
                .collect();
            tokens.sort();
            tokens.dedup();
        }
    }
    let rest = source.get(start..).unwrap_or("");
    // A missing `;` is best shown where it belongs: right after the previous token.
    if tokens.iter().any(|t| t == "`;`") {
        let before = source.get(..start).unwrap_or("");
        let trimmed = before.trim_end().len();
        if trimmed < start {
            start = trimmed;
            end = trimmed;
        }
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let found: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace())
        .take(20)
        .collect();
    let found = if rest.trim().is_empty() {
        "end of file".to_string()
    } else if found.is_empty() {
        "end of line".to_string()
    } else {
        format!("`{}`", sluice_defs::names::echo(&found))
    };
    let expected = match &e.variant {
        _ if !tokens.is_empty() => tokens.iter().map(|s| s.as_str()).collect(),
        ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().filter_map(|r| rule_name(*r)).collect();
            names.sort_unstable();
            names.dedup();
            names
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let label = if expected.is_empty() {
        "unexpected input".to_string()
    } else {
        format!("expected {}", join_or(&expected))
    };
    Diagnostic::error("E0001", format!("syntax error: unexpected {found}"))
        .with_label(Span::new(start, end), label)
}

fn join_or(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        _ => {
            let (last, rest) = names.split_last().unwrap_or((&"", &[]));
            format!("{} or {}", rest.join(", "), last)
        }
    }
}

/// Friendly names of the rules a user can be told were expected.
fn rule_name(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "end of input",
        Rule::ident => "a name",
        Rule::path => "a field or name",
        Rule::header_type | Rule::header_inst => "`header`",
        Rule::metadata_decl => "`metadata`",
        Rule::secret_decl => "`secret`",
        Rule::checksum_decl => "`checksum`",
        Rule::parser_decl => "`parser`",
        Rule::action_decl => "`action`",
        Rule::table_decl => "`table`",
        Rule::control_decl => "`control`",
        Rule::deparser_decl => "`deparser`",
        Rule::field_decl | Rule::meta_field => "a field declaration `name: bit<N>;`",
        Rule::field_type | Rule::data_type | Rule::bit_type => "a type such as `bit<16>`",
        Rule::varbit_type => "`varbit<N>`",
        Rule::port_type => "`port`",
        Rule::state_decl => "`state`",
        Rule::state_limit => "`limit N`",
        Rule::extract_stmt => "`extract(...)`",
        Rule::goto_stmt => "`transition STATE;`",
        Rule::select_stmt => "`select (...) { ... }`",
        Rule::select_case | Rule::keyset_list | Rule::keyset => "a select case",
        Rule::param => "a parameter `name: type`",
        Rule::nonzero_kw => "`nonzero`",
        Rule::key_prop => "`key { ... }`",
        Rule::key_elem => "a key `field: match_kind;`",
        Rule::actions_prop => "`actions { ... }`",
        Rule::default_prop => "`default ACTION(...);`",
        Rule::size_prop => "`size N;`",
        Rule::entries_prop => "`entries { ... }`",
        Rule::const_entry => "a table entry",
        Rule::emit_stmt => "`emit(...)`",
        Rule::block => "`{`",
        Rule::if_stmt | Rule::if_head => "`if`",
        Rule::switch_stmt => "`switch`",
        Rule::assign_stmt => "an assignment",
        Rule::apply_stmt => "`TABLE.apply();`",
        Rule::call_stmt | Rule::call_expr => "a call",
        Rule::switch_case => "a switch case `ACTION: { ... }`",
        Rule::expr => "an expression",
        Rule::lor | Rule::land => "a logical operator",
        Rule::eq | Rule::ne | Rule::le | Rule::ge | Rule::lt | Rule::gt => "a comparison",
        Rule::shl | Rule::shr | Rule::bor | Rule::bxor | Rule::band => "an operator",
        Rule::add | Rule::sub | Rule::mul => "an operator",
        Rule::not | Rule::bnot | Rule::cast => "an expression",
        Rule::apply_expr => "`TABLE.apply().hit`",
        Rule::hash_expr | Rule::siphash_expr => "an expression",
        Rule::mac_lit | Rule::ipv4_lit | Rule::hex_lit | Rule::bin_lit | Rule::int_lit => {
            "a number"
        }
        Rule::bool_lit => "`true` or `false`",
        Rule::string_lit => "a string",
        Rule::paren => "`(`",
        Rule::default_kw => "`default`",
        Rule::const_kw => "`const`",
        _ => return None,
    })
}

fn ident(p: Pair<Rule>) -> Ident {
    Ident {
        name: p.as_str().to_string(),
        span: span(&p),
    }
}

fn path(p: Pair<Rule>) -> Path {
    let sp = span(&p);
    Path {
        parts: p.into_inner().map(ident).collect(),
        span: sp,
    }
}

fn next<'a>(it: &mut Pairs<'a, Rule>, at: Span) -> R<Pair<'a, Rule>> {
    it.next().ok_or_else(|| internal(at))
}

/// The grammar guarantees the shapes the walk expects; this is the error if it ever does not.
fn internal(at: Span) -> Diagnostic {
    Diagnostic::error("E0000", "internal error: unexpected syntax tree shape")
        .with_label(at, "while reading this")
}

fn int(p: &Pair<Rule>) -> R<u64> {
    let text: String = p.as_str().chars().filter(|c| *c != '_').collect();
    text.parse::<u64>().map_err(|_| {
        Diagnostic::error("E0002", "number too large")
            .with_label(span(p), "does not fit in 64 bits")
    })
}

fn build_item(p: Pair<Rule>) -> R<Item> {
    let sp = span(&p);
    let rule = p.as_rule();
    let mut it = p.into_inner();
    Ok(match rule {
        Rule::header_type => {
            let name = ident(next(&mut it, sp)?);
            let fields = it.map(field_decl).collect::<R<Vec<_>>>()?;
            Item::HeaderType(HeaderType {
                name,
                fields,
                span: sp,
            })
        }
        Rule::header_inst => {
            let name = ident(next(&mut it, sp)?);
            let ty = ident(next(&mut it, sp)?);
            Item::HeaderInst(HeaderInst { name, ty, span: sp })
        }
        Rule::metadata_decl => Item::Metadata(Metadata {
            fields: it.map(field_decl).collect::<R<Vec<_>>>()?,
            span: sp,
        }),
        Rule::secret_decl => Item::Secret(SecretDecl {
            name: ident(next(&mut it, sp)?),
            ty: it.next().map(ty).transpose()?,
            span: sp,
        }),
        Rule::checksum_decl => {
            let kind = ident(next(&mut it, sp)?);
            let field = path(next(&mut it, sp)?);
            let pseudo = it.next().map(ident);
            Item::Checksum(ChecksumDecl {
                kind,
                field,
                pseudo,
                span: sp,
            })
        }
        Rule::parser_decl => Item::Parser(ParserDecl {
            states: it.map(state_decl).collect::<R<Vec<_>>>()?,
            span: sp,
        }),
        Rule::action_decl => {
            let name = ident(next(&mut it, sp)?);
            let mut params = Vec::new();
            let mut body = None;
            for q in it {
                match q.as_rule() {
                    Rule::param => {
                        let qs = span(&q);
                        let mut qi = q.into_inner();
                        let name = ident(next(&mut qi, qs)?);
                        let mut t = next(&mut qi, qs)?;
                        let nonzero = t.as_rule() == Rule::nonzero_kw;
                        if nonzero {
                            t = next(&mut qi, qs)?;
                        }
                        let ty = ty(t)?;
                        params.push(Param { name, ty, nonzero });
                    }
                    _ => body = Some(block(q)?),
                }
            }
            Item::Action(ActionDecl {
                name,
                params,
                body: body.ok_or_else(|| internal(sp))?,
                span: sp,
            })
        }
        Rule::table_decl => Item::Table(table_decl(sp, it)?),
        Rule::control_decl => {
            let name = ident(next(&mut it, sp)?);
            let body = block(next(&mut it, sp)?)?;
            Item::Control(ControlDecl {
                name,
                body,
                span: sp,
            })
        }
        Rule::deparser_decl => {
            let mut emits = Vec::new();
            for e in it {
                emits.extend(e.into_inner().map(ident));
            }
            Item::Deparser(DeparserDecl { emits, span: sp })
        }
        _ => return Err(internal(sp)),
    })
}

fn field_decl(p: Pair<Rule>) -> R<FieldDecl> {
    let sp = span(&p);
    let mut it = p.into_inner();
    let name = ident(next(&mut it, sp)?);
    let ty = ty(next(&mut it, sp)?)?;
    Ok(FieldDecl { name, ty })
}

fn ty(p: Pair<Rule>) -> R<Type> {
    let sp = span(&p);
    // field_type and data_type wrap the concrete type.
    let inner = match p.as_rule() {
        Rule::field_type | Rule::data_type => next(&mut p.into_inner(), sp)?,
        _ => p,
    };
    let inner = if inner.as_rule() == Rule::data_type {
        next(&mut inner.into_inner(), sp)?
    } else {
        inner
    };
    let kind = match inner.as_rule() {
        Rule::port_type => TypeKind::Port,
        Rule::bit_type | Rule::varbit_type => {
            let is_var = inner.as_rule() == Rule::varbit_type;
            let n = next(&mut inner.into_inner(), sp)?;
            let w = int(&n)?;
            let w = u32::try_from(w).unwrap_or(u32::MAX);
            if is_var {
                TypeKind::Varbit(w)
            } else {
                TypeKind::Bit(w)
            }
        }
        _ => return Err(internal(sp)),
    };
    Ok(Type { kind, span: sp })
}

fn state_decl(p: Pair<Rule>) -> R<StateDecl> {
    let sp = span(&p);
    let mut it = p.into_inner();
    let name = ident(next(&mut it, sp)?);
    let mut limit = None;
    let mut stmts = Vec::new();
    let mut transition = None;
    for q in it {
        let qs = span(&q);
        match q.as_rule() {
            Rule::state_limit => {
                let n = next(&mut q.into_inner(), qs)?;
                limit = Some((int(&n)?, qs));
            }
            Rule::extract_stmt => {
                let mut qi = q.into_inner();
                let header = ident(next(&mut qi, qs)?);
                let varbit = match qi.next() {
                    Some(f) => Some((ident(f), expr(next(&mut qi, qs)?)?)),
                    None => None,
                };
                stmts.push(ParserStmt::Extract {
                    header,
                    varbit,
                    span: qs,
                });
            }
            Rule::assign_stmt => stmts.push(ParserStmt::Assign(assign(q)?)),
            Rule::goto_stmt => {
                transition = Some(Transition::Goto(ident(next(&mut q.into_inner(), qs)?)))
            }
            Rule::select_stmt => {
                let mut exprs = Vec::new();
                let mut cases = Vec::new();
                for r in q.into_inner() {
                    match r.as_rule() {
                        Rule::expr => exprs.push(expr(r)?),
                        Rule::select_case => {
                            let rs = span(&r);
                            let mut ri = r.into_inner();
                            let keys = keyset_list(next(&mut ri, rs)?)?;
                            let target = ident(next(&mut ri, rs)?);
                            cases.push(SelectCase {
                                keys,
                                target,
                                span: rs,
                            });
                        }
                        _ => return Err(internal(span(&r))),
                    }
                }
                transition = Some(Transition::Select {
                    exprs,
                    cases,
                    span: qs,
                });
            }
            _ => return Err(internal(qs)),
        }
    }
    Ok(StateDecl {
        name,
        limit,
        stmts,
        transition: transition.ok_or_else(|| internal(sp))?,
        span: sp,
    })
}

fn keyset_list(p: Pair<Rule>) -> R<KeysetList> {
    let sp = span(&p);
    let mut items = Vec::new();
    for q in p.into_inner() {
        match q.as_rule() {
            Rule::default_kw => return Ok(KeysetList::Default(sp)),
            Rule::keyset => items.push(keyset(q)?),
            _ => return Err(internal(span(&q))),
        }
    }
    Ok(KeysetList::List(items, sp))
}

fn keyset(p: Pair<Rule>) -> R<Keyset> {
    let sp = span(&p);
    let q = next(&mut p.into_inner(), sp)?;
    let qs = span(&q);
    let rule = q.as_rule();
    let mut it = q.into_inner();
    Ok(match rule {
        Rule::default_kw => Keyset::Default(qs),
        Rule::ks_value => Keyset::Value(literal(next(&mut it, qs)?)?),
        Rule::ks_mask => {
            let a = literal(next(&mut it, qs)?)?;
            Keyset::Mask(a, literal(next(&mut it, qs)?)?)
        }
        Rule::ks_range => {
            let a = literal(next(&mut it, qs)?)?;
            Keyset::Range(a, literal(next(&mut it, qs)?)?)
        }
        Rule::ks_prefix => {
            let a = literal(next(&mut it, qs)?)?;
            let n = next(&mut it, qs)?;
            let ns = span(&n);
            Keyset::Prefix(a, int(&n)?, ns)
        }
        _ => return Err(internal(qs)),
    })
}

/// Reads a numeric literal; its natural width is the width its spelling implies.
pub(crate) fn literal(p: Pair<Rule>) -> R<Lit> {
    let sp = span(&p);
    let text: String = p.as_str().chars().filter(|c| *c != '_').collect();
    let too_big = || {
        Diagnostic::error("E0002", "number too large").with_label(sp, "does not fit in 128 bits")
    };
    let (value, natural_width) = match p.as_rule() {
        Rule::int_lit => (text.parse::<u128>().map_err(|_| too_big())?, None),
        // Hex and binary literals adapt to their context like decimal ones: leading zeros
        // do not make a value wider.
        Rule::hex_lit => (
            u128::from_str_radix(&text[2..], 16).map_err(|_| too_big())?,
            None,
        ),
        Rule::bin_lit => (
            u128::from_str_radix(&text[2..], 2).map_err(|_| too_big())?,
            None,
        ),
        Rule::ipv4_lit => {
            let mut v: u128 = 0;
            for octet in text.split('.') {
                let o: u128 = octet.parse().map_err(|_| internal(sp))?;
                if o > 255 {
                    return Err(Diagnostic::error("E0003", "invalid IPv4 address")
                        .with_label(sp, format!("{o} is not an octet (0 to 255)")));
                }
                v = (v << 8) | o;
            }
            (v, Some(32))
        }
        Rule::mac_lit => {
            let mut v: u128 = 0;
            for b in text.split(':') {
                v = (v << 8) | u128::from_str_radix(b, 16).map_err(|_| internal(sp))?;
            }
            (v, Some(48))
        }
        _ => return Err(internal(sp)),
    };
    Ok(Lit {
        value,
        natural_width,
        span: sp,
    })
}

fn table_decl(sp: Span, mut it: Pairs<Rule>) -> R<TableDecl> {
    let name = ident(next(&mut it, sp)?);
    let mut t = TableDecl {
        name,
        keys: Vec::new(),
        key_span: None,
        actions: Vec::new(),
        default: None,
        size: None,
        entries: None,
        span: sp,
    };
    for q in it {
        let qs = span(&q);
        match q.as_rule() {
            Rule::key_prop => {
                t.key_span = Some(qs);
                for k in q.into_inner() {
                    let ks = span(&k);
                    let mut ki = k.into_inner();
                    let field = path(next(&mut ki, ks)?);
                    let kind = ident(next(&mut ki, ks)?);
                    t.keys.push(KeyElem { field, kind });
                }
            }
            Rule::actions_prop => t.actions.extend(q.into_inner().map(ident)),
            Rule::default_prop => {
                let mut is_const = false;
                let mut call_ = None;
                for r in q.into_inner() {
                    match r.as_rule() {
                        Rule::const_kw => is_const = true,
                        _ => call_ = Some(call(r)?),
                    }
                }
                t.default = Some(DefaultAction {
                    is_const,
                    call: call_.ok_or_else(|| internal(qs))?,
                    span: qs,
                });
            }
            Rule::size_prop => {
                let n = next(&mut q.into_inner(), qs)?;
                t.size = Some((int(&n)?, qs));
            }
            Rule::entries_prop => {
                let mut is_const = false;
                let mut entries = Vec::new();
                for r in q.into_inner() {
                    match r.as_rule() {
                        Rule::const_kw => is_const = true,
                        Rule::const_entry => {
                            let rs = span(&r);
                            let mut ri = r.into_inner();
                            let keys = keyset_list(next(&mut ri, rs)?)?;
                            let call_ = call(next(&mut ri, rs)?)?;
                            let priority = match ri.next() {
                                Some(n) => Some((int(&n)?, span(&n))),
                                None => None,
                            };
                            entries.push(ConstEntry {
                                keys,
                                call: call_,
                                priority,
                                span: rs,
                            });
                        }
                        _ => return Err(internal(span(&r))),
                    }
                }
                t.entries = Some(ConstEntries {
                    is_const,
                    entries,
                    span: qs,
                });
            }
            _ => return Err(internal(qs)),
        }
    }
    Ok(t)
}

fn block(p: Pair<Rule>) -> R<Block> {
    let sp = span(&p);
    Ok(Block {
        stmts: p.into_inner().map(stmt).collect::<R<Vec<_>>>()?,
        span: sp,
    })
}

fn assign(p: Pair<Rule>) -> R<Assign> {
    let sp = span(&p);
    let mut it = p.into_inner();
    let target = path(next(&mut it, sp)?);
    let value = expr(next(&mut it, sp)?)?;
    Ok(Assign {
        target,
        value,
        span: sp,
    })
}

fn call(p: Pair<Rule>) -> R<Call> {
    let sp = span(&p);
    let mut it = p.into_inner();
    let name = ident(next(&mut it, sp)?);
    let mut args = Vec::new();
    for a in it {
        match a.as_rule() {
            Rule::string_lit => {
                let s = a.as_str();
                args.push(Arg::Str(s[1..s.len() - 1].to_string(), span(&a)));
            }
            _ => args.push(Arg::Expr(expr(a)?)),
        }
    }
    Ok(Call {
        name,
        args,
        span: sp,
    })
}

/// Where an `if` statement of a chain starts.
fn inner_start(s: &Stmt) -> usize {
    match s {
        Stmt::If { span, .. } => span.start,
        _ => 0,
    }
}

fn stmt(p: Pair<Rule>) -> R<Stmt> {
    let sp = span(&p);
    Ok(match p.as_rule() {
        Rule::assign_stmt => Stmt::Assign(assign(p)?),
        Rule::apply_stmt => Stmt::Apply(ident(next(&mut p.into_inner(), sp)?), sp),
        Rule::call_stmt => Stmt::Call(call(next(&mut p.into_inner(), sp)?)?),
        Rule::block => Stmt::Block(block(p)?),
        Rule::if_stmt => {
            // `if A {} else if B {} else {}`: heads A and B, then the final else. Built from
            // the end, each head's statement holding the rest of the chain as its else, and
            // spanning from its `if` to the end of the chain.
            let end = sp.end;
            let mut heads = Vec::new();
            let mut els = None;
            for part in p.into_inner() {
                match part.as_rule() {
                    Rule::if_head => heads.push(part),
                    _ => els = Some(block(part)?),
                }
            }
            if heads.len() > MAX_ELSE_IF {
                return Err(Diagnostic::error("E0001", "`else if` chain too long")
                    .with_label(
                        span(&heads[MAX_ELSE_IF]),
                        format!("more than {MAX_ELSE_IF} `if`s in one chain"),
                    )
                    .with_help("a table (`switch` on its action) chooses among many cases"));
            }
            let mut chain: Option<Stmt> = None;
            for h in heads.into_iter().rev() {
                let hs = span(&h);
                let mut it = h.into_inner();
                let cond = expr(next(&mut it, hs)?)?;
                let then = block(next(&mut it, hs)?)?;
                let els = match chain.take() {
                    Some(inner) => Some(Block {
                        span: Span::new(inner_start(&inner), end),
                        stmts: vec![inner],
                    }),
                    None => els.take(),
                };
                chain = Some(Stmt::If {
                    cond,
                    then,
                    els,
                    span: Span::new(hs.start, end),
                });
            }
            chain.ok_or_else(|| internal(sp))?
        }
        Rule::switch_stmt => {
            let mut it = p.into_inner();
            let table = ident(next(&mut it, sp)?);
            let mut cases = Vec::new();
            for c in it {
                let cs = span(&c);
                let mut ci = c.into_inner();
                let label = next(&mut ci, cs)?;
                let action = match label.as_rule() {
                    Rule::default_kw => None,
                    _ => Some(ident(label)),
                };
                let body = block(next(&mut ci, cs)?)?;
                cases.push(SwitchCase {
                    action,
                    body,
                    span: cs,
                });
            }
            Stmt::Switch {
                table,
                cases,
                span: sp,
            }
        }
        _ => return Err(internal(sp)),
    })
}

/// An infix operator and its precedence (higher binds tighter), as in C and P4; `None` for a
/// rule that is not one.
fn infix(r: Rule) -> Option<(BinOp, u8)> {
    Some(match r {
        Rule::lor => (BinOp::Or, 1),
        Rule::land => (BinOp::And, 2),
        Rule::eq => (BinOp::Eq, 3),
        Rule::ne => (BinOp::Ne, 3),
        Rule::lt => (BinOp::Lt, 4),
        Rule::le => (BinOp::Le, 4),
        Rule::gt => (BinOp::Gt, 4),
        Rule::ge => (BinOp::Ge, 4),
        Rule::bor => (BinOp::BitOr, 5),
        Rule::bxor => (BinOp::BitXor, 6),
        Rule::band => (BinOp::BitAnd, 7),
        Rule::shl => (BinOp::Shl, 8),
        Rule::shr => (BinOp::Shr, 8),
        Rule::add => (BinOp::Add, 9),
        Rule::sub => (BinOp::Sub, 9),
        Rule::mul => (BinOp::Mul, 10),
        _ => return None,
    })
}

/// An expression's flat list of prefix operators, operands and infix operators, built into
/// a tree by operator precedence with explicit stacks (no recursion, so that a long chain of
/// operators cannot exhaust the stack; its depth is checked afterwards, see `depth`).
/// Prefix operators bind tighter than any infix one; every infix operator is left
/// associative.
fn expr(p: Pair<Rule>) -> R<Expr> {
    if p.clone().into_inner().count() > 2 * MAX_EXPR_TERMS {
        return Err(Diagnostic::error("E0001", "expression too long")
            .with_label(span(&p), format!("more than {MAX_EXPR_TERMS} operands")));
    }
    let outer = span(&p);
    // Each operand with its depth (the nodes on its longest path to a leaf).
    let mut operands: Vec<(Expr, usize)> = Vec::new();
    let mut ops: Vec<(BinOp, u8)> = Vec::new();
    let mut prefixes: Vec<Pair<Rule>> = Vec::new();
    fn reduce(operands: &mut Vec<(Expr, usize)>, op: BinOp, at: Span) -> R<()> {
        let (rhs, dr) = operands.pop().ok_or_else(|| internal(at))?;
        let (lhs, dl) = operands.pop().ok_or_else(|| internal(at))?;
        let sp = lhs.span.to(rhs.span);
        let d = 1 + dl.max(dr);
        let e = Expr {
            kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
            span: sp,
        };
        operands.push((too_deep_expr(e, d)?, d));
        Ok(())
    }
    for part in p.into_inner() {
        match part.as_rule() {
            Rule::not | Rule::bnot | Rule::cast => prefixes.push(part),
            r => match infix(r) {
                Some((op, prec)) => {
                    while let Some(&(top, tp)) = ops.last() {
                        if tp < prec {
                            break;
                        }
                        ops.pop();
                        reduce(&mut operands, top, outer)?;
                    }
                    ops.push((op, prec));
                }
                None => {
                    let mut e = primary(part)?;
                    let mut d = depth(&e);
                    for op in prefixes.drain(..).rev() {
                        let sp = span(&op).to(e.span);
                        let kind = match op.as_rule() {
                            Rule::not => ExprKind::Not(Box::new(e)),
                            Rule::bnot => ExprKind::BitNot(Box::new(e)),
                            _ => {
                                let os = span(&op);
                                let t = ty(next(&mut op.into_inner(), os)?)?;
                                ExprKind::Cast(t, Box::new(e))
                            }
                        };
                        d += 1;
                        e = too_deep_expr(Expr { kind, span: sp }, d)?;
                    }
                    operands.push((e, d));
                }
            },
        }
    }
    while let Some((op, _)) = ops.pop() {
        reduce(&mut operands, op, outer)?;
    }
    match (operands.pop(), operands.is_empty()) {
        (Some((e, _)), true) => Ok(e),
        _ => Err(internal(outer)),
    }
}

/// An expression of depth `d`, or the error if that is past [`MAX_EXPR_DEPTH`].
fn too_deep_expr(e: Expr, d: usize) -> R<Expr> {
    if d > MAX_EXPR_DEPTH {
        return Err(Diagnostic::error("E0001", "expression nested too deeply")
            .with_label(
                e.span,
                format!("more than {MAX_EXPR_DEPTH} levels of operators"),
            )
            .with_help("split it with metadata fields: `meta.t = ...;` then use `meta.t`"));
    }
    Ok(e)
}

/// The depth of an expression built already (so at most [`MAX_EXPR_DEPTH`]: the recursion
/// is bounded).
fn depth(e: &Expr) -> usize {
    1 + match &e.kind {
        ExprKind::Binary(_, a, b) => depth(a).max(depth(b)),
        ExprKind::Not(a) | ExprKind::BitNot(a) | ExprKind::Cast(_, a) => depth(a),
        ExprKind::Hash { fields, max, .. } => {
            fields.iter().map(depth).max().unwrap_or(0).max(depth(max))
        }
        ExprKind::SipHash { fields, .. } => fields.iter().map(depth).max().unwrap_or(0),
        ExprKind::Lit(_) | ExprKind::Bool(_) | ExprKind::Path(_) | ExprKind::Apply(..) => 0,
    }
}

fn primary(p: Pair<Rule>) -> R<Expr> {
    let sp = span(&p);
    let kind = match p.as_rule() {
        Rule::paren => return expr(next(&mut p.into_inner(), sp)?).map(|e| Expr { span: sp, ..e }),
        Rule::expr => return expr(p),
        Rule::path => ExprKind::Path(path(p)),
        Rule::bool_lit => ExprKind::Bool(p.as_str() == "true"),
        Rule::int_lit | Rule::hex_lit | Rule::bin_lit | Rule::ipv4_lit | Rule::mac_lit => {
            ExprKind::Lit(literal(p)?)
        }
        Rule::apply_expr => {
            let mut it = p.into_inner();
            let table = ident(next(&mut it, sp)?);
            let which = ident(next(&mut it, sp)?);
            let res = match which.name.as_str() {
                "hit" => TableResult::Hit,
                "miss" => TableResult::Miss,
                "action_run" => {
                    return Err(Diagnostic::error(
                        "E0004",
                        "`action_run` can only be used in a `switch`",
                    )
                    .with_label(which.span, "not allowed in an expression")
                    .with_help(format!(
                        "write `switch ({}.apply().action_run) {{ ACTION: {{ ... }} }}`",
                        table.name
                    )))
                }
                other => {
                    return Err(Diagnostic::error(
                        "E0004",
                        format!("a table's result has no member `{other}`"),
                    )
                    .with_label(which.span, "expected `hit` or `miss`"))
                }
            };
            ExprKind::Apply(table, res)
        }
        Rule::hash_expr => {
            let mut it = p.into_inner();
            let algo = ident(next(&mut it, sp)?);
            let fields = field_list(next(&mut it, sp)?)?;
            let max = expr(next(&mut it, sp)?)?;
            ExprKind::Hash {
                algo,
                fields,
                max: Box::new(max),
            }
        }
        Rule::siphash_expr => {
            let mut it = p.into_inner();
            let secret = ident(next(&mut it, sp)?);
            let fields = field_list(next(&mut it, sp)?)?;
            ExprKind::SipHash { secret, fields }
        }
        _ => return Err(internal(sp)),
    };
    Ok(Expr { kind, span: sp })
}

fn field_list(p: Pair<Rule>) -> R<Vec<Expr>> {
    p.into_inner().map(expr).collect()
}
