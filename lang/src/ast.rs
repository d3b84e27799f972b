//! The syntax tree of a Sluice program, every node stamped with its source span.

use std::fmt;

pub mod print;

/// Byte offsets into the program's source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// `a.b.c`: a header field, a metadata field (`meta.x`, `std.x`), a header's validity (`h.valid`)
/// or an action parameter (`p`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub parts: Vec<Ident>,
    pub span: Span,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(&p.name)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeKind {
    Bit(u32),
    Varbit(u32),
    /// A port number: `bit<16>` with its own name, so that signatures read well.
    Port,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Type {
    pub kind: TypeKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Program {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug)]
pub enum Item {
    HeaderType(HeaderType),
    HeaderInst(HeaderInst),
    Metadata(Metadata),
    Secret(SecretDecl),
    Checksum(ChecksumDecl),
    Parser(ParserDecl),
    Action(ActionDecl),
    Table(TableDecl),
    Control(ControlDecl),
    Deparser(DeparserDecl),
}

/// `header ipv4 { ... }` declares a header type and an instance of it with the same name.
#[derive(Clone, Debug)]
pub struct HeaderType {
    pub name: Ident,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: Type,
}

/// `secret k;` (128 bits) or `secret k: bit<256>;`.
#[derive(Clone, Debug)]
pub struct SecretDecl {
    pub name: Ident,
    pub ty: Option<Type>,
    pub span: Span,
}

/// `header outer: ipv4;` declares another instance of a header type.
#[derive(Clone, Debug)]
pub struct HeaderInst {
    pub name: Ident,
    pub ty: Ident,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Metadata {
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

/// `checksum ipv4_header(ipv4.checksum);` or `checksum tcp_ipv4(tcp.checksum, ipv4);`
#[derive(Clone, Debug)]
pub struct ChecksumDecl {
    pub kind: Ident,
    pub field: Path,
    pub pseudo: Option<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ParserDecl {
    pub states: Vec<StateDecl>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct StateDecl {
    pub name: Ident,
    pub limit: Option<(u64, Span)>,
    pub stmts: Vec<ParserStmt>,
    pub transition: Transition,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ParserStmt {
    Extract {
        header: Ident,
        /// The variable-length field and its length in bits.
        varbit: Option<(Ident, Expr)>,
        span: Span,
    },
    Assign(Assign),
}

#[derive(Clone, Debug)]
pub enum Transition {
    Goto(Ident),
    Select {
        exprs: Vec<Expr>,
        cases: Vec<SelectCase>,
        span: Span,
    },
}

#[derive(Clone, Debug)]
pub struct SelectCase {
    pub keys: KeysetList,
    pub target: Ident,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum KeysetList {
    Default(Span),
    List(Vec<Keyset>, Span),
}

impl KeysetList {
    pub fn span(&self) -> Span {
        match self {
            KeysetList::Default(s) | KeysetList::List(_, s) => *s,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Keyset {
    Default(Span),
    Value(Lit),
    Mask(Lit, Lit),
    Range(Lit, Lit),
    Prefix(Lit, u64, Span),
}

impl Keyset {
    pub fn span(&self) -> Span {
        match self {
            Keyset::Default(s) => *s,
            Keyset::Value(l) => l.span,
            Keyset::Mask(a, b) | Keyset::Range(a, b) => a.span.to(b.span),
            Keyset::Prefix(l, _, s) => l.span.to(*s),
        }
    }
}

/// A literal value with the number of bits its spelling implies (IPv4: 32, MAC: 48), if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lit {
    pub value: u128,
    pub natural_width: Option<u32>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ActionDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: Ident,
    pub ty: Type,
    /// `nonzero`: the control plane may not install an entry with 0 here.
    pub nonzero: bool,
}

#[derive(Clone, Debug)]
pub struct TableDecl {
    pub name: Ident,
    pub keys: Vec<KeyElem>,
    pub key_span: Option<Span>,
    pub actions: Vec<Ident>,
    pub default: Option<DefaultAction>,
    pub size: Option<(u64, Span)>,
    pub entries: Option<ConstEntries>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct KeyElem {
    pub field: Path,
    pub kind: Ident,
}

#[derive(Clone, Debug)]
pub struct DefaultAction {
    pub is_const: bool,
    pub call: Call,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ConstEntries {
    pub is_const: bool,
    pub entries: Vec<ConstEntry>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ConstEntry {
    pub keys: KeysetList,
    pub call: Call,
    pub priority: Option<(u64, Span)>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ControlDecl {
    pub name: Ident,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct DeparserDecl {
    pub emits: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Assign {
    pub target: Path,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum Stmt {
    Assign(Assign),
    /// `t.apply();`
    Apply(Ident, Span),
    /// `f(args);`: a built-in (`forward`, `drop`, `set_valid`, ...) or an action.
    Call(Call),
    If {
        cond: Expr,
        then: Block,
        els: Option<Block>,
        span: Span,
    },
    Switch {
        table: Ident,
        cases: Vec<SwitchCase>,
        span: Span,
    },
    Block(Block),
}

#[derive(Clone, Debug)]
pub struct SwitchCase {
    /// None: `default`.
    pub action: Option<Ident>,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub name: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum Arg {
    Expr(Expr),
    Str(String, Span),
}

impl Arg {
    pub fn span(&self) -> Span {
        match self {
            Arg::Expr(e) => e.span,
            Arg::Str(_, s) => *s,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    BitOr,
    BitXor,
    BitAnd,
    Shl,
    Shr,
    Add,
    Sub,
    Mul,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::BitAnd => "&",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
        }
    }
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }
    pub fn is_logical(self) -> bool {
        matches!(self, BinOp::Or | BinOp::And)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableResult {
    Hit,
    Miss,
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Lit(Lit),
    Bool(bool),
    Path(Path),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    BitNot(Box<Expr>),
    Cast(Type, Box<Expr>),
    /// `t.apply().hit` / `.miss`
    Apply(Ident, TableResult),
    /// `hash(algo, {fields}, max)`
    Hash {
        algo: Ident,
        fields: Vec<Expr>,
        max: Box<Expr>,
    },
    /// `siphash(secret, {fields})`
    SipHash {
        secret: Ident,
        fields: Vec<Expr>,
    },
}
