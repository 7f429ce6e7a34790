#!/usr/bin/env python3
"""Turns rustdoc's JSON output for the `shmring` library into a sorted text listing of its public API.

Called by `.ci/public-api`; reads the JSON file named on the command line, writes the listing to
stdout and a summary (item counts) to stderr.

One line per public path, sorted by path:
  mod / struct / enum / union / trait / type / const / static / macro   the item itself
  field, variant                                                         members of structs and enums
  fn / const fn / unsafe fn / async fn                                  free functions, inherent and
                                                                         trait methods, with signature
  impl Trait for Type                                                    explicit trait impls, Send/Sync
                                                                         (also the compiler-derived ones)
  use A = B                                                              a second public path A to B
Items marked `#[doc(hidden)]` (and everything under them) are left out of the listing and named
in a separate section at the end, so that a new hidden item still shows up in review.

rustdoc's JSON format changes between toolchains (`format_version`); the readers below accept
the key spellings of the versions seen so far and fall back to `_` for a type shape they do not
know, so a new format changes the listing (and CI says so) instead of crashing it.
"""

import json
import re
import sys

# Auto traits whose compiler-derived impls are part of the API (thread safety); the others
# (Unpin, UnwindSafe, RefUnwindSafe, Freeze) are left out as noise.
LISTED_AUTO_TRAITS = {"Send", "Sync"}
HIDDEN_RE = re.compile(r"doc\s*\(\s*hidden\s*\)")


def kind_of(item):
    inner = item.get("inner")
    if isinstance(inner, dict) and inner:
        return next(iter(inner))
    if isinstance(inner, str):
        return inner
    return item.get("kind", "?")  # formats before v~20 kept the kind beside `inner`


def body(item):
    inner = item.get("inner")
    if isinstance(inner, dict) and len(inner) == 1:
        value = next(iter(inner.values()))
        return value if isinstance(value, dict) else {"_": value}
    return inner if isinstance(inner, dict) else {}


def first(d, *keys, default=None):
    """The value of the first of `keys` present in `d` (key spellings differ between formats)."""
    if not isinstance(d, dict):
        return default
    for k in keys:
        if k in d:
            return d[k]
    return default


def flag(d, name):
    """A boolean flag of a function header or pointer: `is_unsafe` / `unsafe_` / `unsafe` / a list."""
    if isinstance(d, list):
        return name in d
    return bool(first(d, "is_" + name, name + "_", name, default=False))


def field_type(item):
    """The type of a struct field or tuple-variant field item."""
    inner = item.get("inner") if item else None
    if isinstance(inner, dict) and "struct_field" in inner:
        return inner["struct_field"]
    return inner  # formats before v~20: the type itself, beside `kind`


def is_hidden(item):
    return bool(HIDDEN_RE.search(json.dumps(item.get("attrs", []))))


def is_public(item):
    vis = item.get("visibility")
    return vis in ("public", "default") or vis is None


class Renderer:
    def __init__(self, doc):
        self.doc = doc
        self.index = doc["index"]
        self.public_path = {}  # id -> primary public path, for the crate's own types

    # ---- types -----------------------------------------------------------------------------

    def path(self, p):
        """A path object ({path|name, id, args}), as written in the source."""
        if not isinstance(p, dict):
            return "_"
        if "resolved_path" in p:
            p = p["resolved_path"]
        # The crate's own items by their public path (how the source spells them, `crate::...`
        # or a `use`d short name, is no part of the API); other crates' as written (stable
        # across toolchains, unlike the defining path in std), but without a `crate::` route.
        name = self.public_path.get(str(p.get("id")))
        if name is None:
            name = first(p, "path", "name", default="_")
            if name.split("::", 1)[0] in ("crate", "self", "super"):
                name = name.rsplit("::", 1)[-1]
        return name + self.args(p.get("args"))

    def args(self, a):
        if not a:
            return ""
        if "angle_bracketed" in a:
            ab = a["angle_bracketed"]
            parts = [self.generic_arg(x) for x in ab.get("args", [])]
            for c in first(ab, "constraints", "bindings", default=[]):
                parts.append(self.constraint(c))
            return "<" + ", ".join(parts) + ">" if parts else ""
        if "parenthesized" in a:
            pa = a["parenthesized"]
            out = "(" + ", ".join(self.ty(t) for t in pa.get("inputs", [])) + ")"
            if pa.get("output"):
                out += " -> " + self.ty(pa["output"])
            return out
        return ""

    def generic_arg(self, x):
        if isinstance(x, str):
            return "_" if x == "infer" else x
        if "lifetime" in x:
            return x["lifetime"]
        if "type" in x:
            return self.ty(x["type"])
        if "const" in x:
            c = x["const"]
            return first(c, "expr", "value", default="_") if isinstance(c, dict) else str(c)
        return "_"

    def constraint(self, c):
        name = c.get("name", "_") + self.args(c.get("args"))
        b = c.get("binding", {})
        if "equality" in b:
            term = b["equality"]
            if isinstance(term, dict) and "type" in term:
                return f"{name} = {self.ty(term['type'])}"
            if isinstance(term, dict) and "constant" in term:
                return f"{name} = {first(term['constant'], 'expr', default='_')}"
            return f"{name} = {self.ty(term)}"
        if "constraint" in b:
            return f"{name}: {self.bounds(b['constraint'])}"
        return name

    def ty(self, t):
        if t is None:
            return "()"
        if not isinstance(t, dict) or not t:
            return "_"
        k, v = next(iter(t.items()))
        if k == "resolved_path":
            return self.path(v)
        if k in ("generic", "primitive"):
            return v
        if k == "tuple":
            inner = ", ".join(self.ty(x) for x in v)
            return f"({inner},)" if len(v) == 1 else f"({inner})"
        if k == "slice":
            return f"[{self.ty(v)}]"
        if k == "array":
            return f"[{self.ty(v.get('type'))}; {v.get('len', '_')}]"
        if k == "borrowed_ref":
            lt = v.get("lifetime")
            mut = "mut " if first(v, "is_mutable", "mutable", default=False) else ""
            return "&" + (lt + " " if lt else "") + mut + self.ty(v.get("type"))
        if k == "raw_pointer":
            mut = "mut" if first(v, "is_mutable", "mutable", default=False) else "const"
            return f"*{mut} {self.ty(v.get('type'))}"
        if k == "impl_trait":
            return "impl " + self.bounds(v)
        if k == "dyn_trait":
            parts = []
            for pt in v.get("traits", []):
                hr = self.hrtb(pt.get("generic_params"))
                parts.append(hr + self.path(pt.get("trait")))
            if v.get("lifetime"):
                parts.append(v["lifetime"])
            return "dyn " + " + ".join(parts)
        if k == "qualified_path":
            self_ty = self.ty(v.get("self_type"))
            tr = v.get("trait")
            name = v.get("name", "_") + self.args(v.get("args"))
            return f"<{self_ty} as {self.path(tr)}>::{name}" if tr else f"{self_ty}::{name}"
        if k == "function_pointer":
            sig = first(v, "sig", "decl", default={})
            header = v.get("header", {})
            pre = "unsafe " if flag(header, "unsafe") else ""
            pre += self.abi(header)
            ins = ", ".join(self.ty(x[1]) for x in sig.get("inputs", []))
            out = sig.get("output")
            return f"{self.hrtb(v.get('generic_params'))}{pre}fn({ins})" + (
                f" -> {self.ty(out)}" if out else ""
            )
        if k == "infer":
            return "_"
        if k == "pat":
            return self.ty(v.get("type"))
        return "_"

    def abi(self, header):
        abi = header.get("abi", "Rust") if isinstance(header, dict) else "Rust"
        if abi in ("Rust", None):
            return ""
        if isinstance(abi, dict):
            abi = next(iter(abi))
        return f'extern "{abi}" '

    # ---- generics --------------------------------------------------------------------------

    def bound(self, b):
        if isinstance(b, dict) and "trait_bound" in b:
            tb = b["trait_bound"]
            mod = tb.get("modifier", "none")
            pre = {"maybe": "?", "maybe_const": "~const "}.get(mod, "")
            return self.hrtb(tb.get("generic_params")) + pre + self.path(tb.get("trait"))
        if isinstance(b, dict) and "outlives" in b:
            return b["outlives"]
        if isinstance(b, dict) and "use" in b:
            return "use<" + ", ".join(str(x) if isinstance(x, str) else first(x, "lifetime", "param", default="_") for x in b["use"]) + ">"
        return "_"

    def bounds(self, bs):
        return " + ".join(self.bound(b) for b in bs or [])

    def hrtb(self, params):
        if not params:
            return ""
        return "for<" + ", ".join(p["name"] for p in params) + "> "

    def params(self, generics):
        out = []
        for p in (generics or {}).get("params", []):
            kind = p.get("kind", {})
            if "lifetime" in kind:
                outl = kind["lifetime"].get("outlives", [])
                out.append(p["name"] + (": " + " + ".join(outl) if outl else ""))
            elif "type" in kind:
                tk = kind["type"]
                if first(tk, "is_synthetic", "synthetic", default=False):
                    continue  # `impl Trait` in argument position: shown in the argument
                bs = self.bounds(tk.get("bounds"))
                out.append(p["name"] + (": " + bs if bs else ""))
            elif "const" in kind:
                out.append(f"const {p['name']}: {self.ty(kind['const'].get('type'))}")
        return "<" + ", ".join(out) + ">" if out else ""

    def where(self, generics):
        preds = []
        for w in (generics or {}).get("where_predicates", []):
            if "bound_predicate" in w:
                bp = w["bound_predicate"]
                preds.append(
                    f"{self.hrtb(bp.get('generic_params'))}{self.ty(bp.get('type'))}: {self.bounds(bp.get('bounds'))}"
                )
            elif "lifetime_predicate" in w or "region_predicate" in w:
                lp = first(w, "lifetime_predicate", "region_predicate")
                preds.append(f"{lp.get('lifetime')}: {' + '.join(map(str, lp.get('outlives', [])))}")
            elif "eq_predicate" in w:
                ep = w["eq_predicate"]
                rhs = ep.get("rhs")
                rhs = self.ty(rhs["type"]) if isinstance(rhs, dict) and "type" in rhs else self.ty(rhs)
                preds.append(f"{self.ty(ep.get('lhs'))} = {rhs}")
        return " where " + ", ".join(preds) if preds else ""

    # ---- items -----------------------------------------------------------------------------

    def fn_line(self, path, item):
        f = body(item)
        header = f.get("header", {})
        pre = ""
        if flag(header, "const"):
            pre += "const "
        if flag(header, "async"):
            pre += "async "
        if flag(header, "unsafe"):
            pre += "unsafe "
        pre += self.abi(header)
        sig = first(f, "sig", "decl", default={})
        ins = []
        for name, t in sig.get("inputs", []):
            if name == "self":
                if t == {"generic": "Self"}:
                    ins.append("self")
                    continue
                if isinstance(t, dict) and "borrowed_ref" in t and t["borrowed_ref"].get("type") == {"generic": "Self"}:
                    br = t["borrowed_ref"]
                    lt = br.get("lifetime")
                    mut = "mut " if first(br, "is_mutable", "mutable", default=False) else ""
                    ins.append("&" + (lt + " " if lt else "") + mut + "self")
                    continue
            ins.append(f"{name}: {self.ty(t)}")
        if first(sig, "is_c_variadic", "c_variadic", default=False):
            ins.append("...")
        out = sig.get("output")
        ret = f" -> {self.ty(out)}" if out is not None else ""
        g = f.get("generics")
        return f"{pre}fn {path}{self.params(g)}({', '.join(ins)}){ret}{self.where(g)}"


class Lister:
    def __init__(self, doc):
        self.doc = doc
        self.index = doc["index"]
        self.r = Renderer(doc)
        self.occ = {}  # id -> set of (path tuple, hidden)
        self.lines = []  # (path, text, hidden)

    def item(self, id_):
        return self.index.get(str(id_))

    # Phase 1: every public path of every item reachable from the crate root.
    def walk(self, path, id_, hidden, stack):
        item = self.item(id_)
        if item is None:
            return
        hidden = hidden or is_hidden(item)
        self.occ.setdefault(str(id_), set()).add((path, hidden))
        if kind_of(item) == "module" and str(id_) not in stack:
            self.walk_module_items(path, body(item).get("items", []), hidden, stack | {str(id_)})

    def walk_module_items(self, path, items, hidden, stack):
        for cid in items:
            child = self.item(cid)
            if child is None or not is_public(child):
                continue
            if kind_of(child) in ("use", "import"):
                u = body(child)
                h = hidden or is_hidden(child)
                target = u.get("id")
                src = u.get("source", "_")
                if first(u, "is_glob", "glob", default=False):
                    t = self.item(target) if target is not None else None
                    if t is not None and kind_of(t) == "module":
                        if str(target) not in stack:
                            self.walk_module_items(path, body(t).get("items", []), h, stack | {str(target)})
                    else:
                        self.lines.append(("::".join(path + ("*",)), f"use {'::'.join(path)}::* = {src}::*", h))
                    continue
                name = u.get("name") or src.rsplit("::", 1)[-1]
                if target is not None and self.item(target) is not None:
                    self.walk(path + (name,), target, h, stack)
                else:
                    # A re-export of another crate's item: name its source.
                    full = self.external_path(target) or src
                    p = "::".join(path + (name,))
                    self.lines.append((p, f"use {p} = {full}", h))
                continue
            if child.get("name") is None:
                continue
            self.walk(path + (child["name"],), cid, hidden, stack)

    def external_path(self, id_):
        summary = self.doc.get("paths", {}).get(str(id_)) if id_ is not None else None
        return "::".join(summary["path"]) if summary and summary.get("path") else None

    # Phase 2: each item in full at its primary path (the shortest public one, not hidden if it
    # can be), and a `use` line for every other path.
    def emit_all(self):
        primaries = {}
        for id_, occs in self.occ.items():
            visible = [o for o in occs if not o[1]]
            primaries[id_] = min(visible or occs, key=lambda o: (len(o[0]), o[0]))
            self.r.public_path[id_] = "::".join(primaries[id_][0])
        for id_, occs in sorted(self.occ.items()):
            primary, hidden = primaries[id_]
            ps = "::".join(primary)
            for other, h in sorted(occs):
                if other != primary:
                    p = "::".join(other)
                    self.lines.append((p, f"use {p} = {ps}", h))
            self.emit(ps, self.item(id_), hidden)

    def add(self, path, text, hidden):
        self.lines.append((path, text, hidden))

    def emit(self, path, item, hidden):
        k = kind_of(item)
        b = body(item)
        r = self.r
        if k == "module":
            self.add(path, f"mod {path}", hidden)
        elif k == "function":
            self.add(path, r.fn_line(path, item), hidden)
        elif k in ("struct", "union"):
            g = b.get("generics")
            sk = first(b, "kind", "struct_type", default="plain")
            fields, stripped, shape = [], False, ""
            if sk == "unit":
                shape = ";"
            elif isinstance(sk, dict) and "tuple" in sk:
                shape = "(" + ", ".join(
                    r.ty(field_type(self.item(f))) if f is not None else "_" for f in sk["tuple"]
                ) + ")"
            else:
                plain = sk.get("plain", {}) if isinstance(sk, dict) else b
                fields = first(plain, "fields", default=b.get("fields", [])) or []
                stripped = first(plain, "has_stripped_fields", "fields_stripped", default=b.get("fields_stripped", False))
                if k == "union":
                    fields = b.get("fields", fields)
                    stripped = first(b, "has_stripped_fields", "fields_stripped", default=stripped)
                shape = " { .. }" if stripped else ""
            self.add(path, f"{k} {path}{r.params(g)}{r.where(g)}{shape}", hidden)
            self.fields(path, fields, hidden)
            self.impls(path, b.get("impls", []), hidden)
        elif k == "enum":
            g = b.get("generics")
            more = " { .. }" if first(b, "has_stripped_variants", "variants_stripped", default=False) else ""
            self.add(path, f"enum {path}{r.params(g)}{r.where(g)}{more}", hidden)
            for vid in b.get("variants", []):
                v = self.item(vid)
                if v is None:
                    continue
                vp = f"{path}::{v['name']}"
                vh = hidden or is_hidden(v)
                vk = first(body(v), "kind", default="plain")
                shape = ""
                if isinstance(vk, dict) and "tuple" in vk:
                    shape = "(" + ", ".join(
                        r.ty(field_type(self.item(f))) if f is not None and self.item(f) else "_" for f in vk["tuple"]
                    ) + ")"
                elif isinstance(vk, dict) and "struct" in vk:
                    fs = []
                    for f in vk["struct"].get("fields", []):
                        fi = self.item(f)
                        if fi is not None:
                            fs.append(f"{fi['name']}: {r.ty(field_type(fi))}")
                    if first(vk["struct"], "has_stripped_fields", "fields_stripped", default=False):
                        fs.append("..")
                    shape = " { " + ", ".join(fs) + " }"
                disc = body(v).get("discriminant")
                if isinstance(disc, dict) and disc.get("expr"):
                    shape += f" = {disc['expr']}"
                self.add(vp, f"variant {vp}{shape}", vh)
            self.impls(path, b.get("impls", []), hidden)
        elif k == "trait":
            g = b.get("generics")
            un = "unsafe " if first(b, "is_unsafe", "unsafe", default=False) else ""
            au = "auto " if first(b, "is_auto", "auto", default=False) else ""
            sup = r.bounds(b.get("bounds"))
            self.add(path, f"{un}{au}trait {path}{r.params(g)}{': ' + sup if sup else ''}{r.where(g)}", hidden)
            for mid in b.get("items", []):
                self.member(path, self.item(mid), hidden)
        elif k in ("type_alias", "typedef"):
            g = b.get("generics")
            self.add(path, f"type {path}{r.params(g)}{r.where(g)} = {r.ty(b.get('type'))}", hidden)
        elif k in ("constant", "assoc_const"):
            self.add(path, f"const {path}: {r.ty(b.get('type'))}", hidden)
        elif k == "static":
            mut = "mut " if first(b, "is_mutable", "mutable", default=False) else ""
            self.add(path, f"static {mut}{path}: {r.ty(b.get('type'))}", hidden)
        elif k in ("macro", "proc_macro"):
            self.add(path, f"macro {path}", hidden)
        else:
            self.add(path, f"{k} {path}", hidden)

    def fields(self, path, ids, hidden):
        for fid in ids or []:
            f = self.item(fid)
            if f is None or not is_public(f) or f.get("name") is None:
                continue
            fp = f"{path}::{f['name']}"
            self.add(fp, f"field {fp}: {self.r.ty(field_type(f))}", hidden or is_hidden(f))

    def member(self, path, m, hidden):
        """An item of a trait or of an inherent impl, at `path::name`."""
        if m is None or not is_public(m) or m.get("name") is None:
            return
        mp = f"{path}::{m['name']}"
        h = hidden or is_hidden(m)
        k = kind_of(m)
        b = body(m)
        if k in ("function", "method", "tymethod"):
            self.add(mp, self.r.fn_line(mp, m), h)
        elif k in ("assoc_type", "assoc_const"):
            if k == "assoc_type":
                g = b.get("generics")
                bs = self.r.bounds(b.get("bounds"))
                default = first(b, "type", "default")
                text = f"type {mp}{self.r.params(g)}" + (f": {bs}" if bs else "") + (
                    f" = {self.r.ty(default)}" if default else ""
                )
            else:
                text = f"const {mp}: {self.r.ty(b.get('type'))}"
            self.add(mp, text, h)
        else:
            self.add(mp, f"{k} {mp}", h)

    def impls(self, path, ids, hidden):
        for iid in ids or []:
            imp = self.item(iid)
            if imp is None:
                continue
            b = body(imp)
            if b.get("blanket_impl"):
                continue  # `impl<T> Trait for T`: std's, the same for every type
            tr = b.get("trait")
            if tr is None:
                # Inherent: each public member under the type's path. A hidden impl block hides
                # its members.
                for mid in b.get("items", []):
                    self.member(path, self.item(mid), hidden or is_hidden(imp))
                continue
            if is_hidden(imp):
                continue  # derive helpers such as StructuralPartialEq
            tname = first(tr, "path", "name", default="_").rsplit("::", 1)[-1]
            synthetic = first(b, "is_synthetic", "synthetic", default=False)
            if synthetic and tname not in LISTED_AUTO_TRAITS:
                continue
            neg = "!" if first(b, "is_negative", "negative", default=False) else ""
            un = "unsafe " if first(b, "is_unsafe", "unsafe", default=False) else ""
            g = b.get("generics")
            for_ty = b.get("for", {})
            for_args = self.r.args(for_ty["resolved_path"].get("args")) if "resolved_path" in for_ty else ""
            text = f"{un}impl{self.r.params(g)} {neg}{self.r.path(tr)} for {path}{for_args}{self.r.where(g)}"
            # Associated types of trait impls are part of what users name (e.g. a Guard type).
            assoc = []
            for mid in b.get("items", []):
                m = self.item(mid)
                if m is not None and kind_of(m) == "assoc_type":
                    t = first(body(m), "type", "default")
                    assoc.append(f"type {m['name']}{self.r.params(body(m).get('generics'))} = {self.r.ty(t)};")
            if assoc:
                text += " { " + " ".join(sorted(assoc)) + " }"
            # Sorted right after the type's own line, before its members (" " < ":").
            self.lines.append((path + " " + text, text, hidden))


def main():
    doc = json.load(open(sys.argv[1]))
    root = doc["index"][str(doc["root"])]
    name = root["name"]
    lister = Lister(doc)
    lister.walk((name,), doc["root"], False, frozenset())
    lister.emit_all()
    public = sorted({(p, t) for p, t, h in lister.lines if not h})
    hidden = sorted({(p, t) for p, t, h in lister.lines if h} - set(public))
    pub_text = [t for _, t in public]
    print(f"# Public API of `{name}`, generated by .ci/public-api from rustdoc JSON.")
    print("# Do not edit: run `.ci/public-api --write` and review the diff.")
    print()
    for t in pub_text:
        print(t)
    print()
    print("# Hidden from the docs (#[doc(hidden)]), listed so that a change to them shows in review:")
    for _, t in hidden:
        print(t)
    unsafe_fns = sum(1 for t in pub_text if re.match(r"^(const |async )*unsafe (extern \"[^\"]*\" )?fn ", t))
    kinds = {}
    for t in pub_text:
        k = re.sub(r"^((unsafe|const|async|auto) (?=.*\b(fn|trait|impl)\b))+", "", t).split(" ", 1)[0]
        k = re.sub(r"<.*", "", k)
        kinds[k] = kinds.get(k, 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
    print(
        f"public API: {len(pub_text)} items ({summary}); {unsafe_fns} unsafe fn; "
        f"{len(hidden)} hidden (rustdoc JSON format {doc.get('format_version')})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
