"""Two small Sphinx helpers for bpnet's documentation.

* ``.. bpnet-usage:: train`` shows what ``bpnet train --help`` prints, taken from
  the command's own parser when the docs are built, as a literal block (the help
  texts are written for a terminal, not as reStructuredText).
* Short cross-references in docstrings (``:meth:`MLP.save``` in
  :mod:`bpnet.registry`) resolve to the one bpnet object whose full name ends with
  them, as ``help()`` readers understand them; an ambiguous or unknown name
  still warns.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode


class BpnetUsage(SphinxDirective):
    """The ``--help`` text of ``bpnet`` or one of its subcommands."""

    optional_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"width": directives.positive_int}

    def run(self) -> list[nodes.Node]:
        from bpnet.cli import main

        argv = [*self.arguments[:1], "--help"]
        out = io.StringIO()
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = str(self.options.get("width", 88))
        try:
            with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
                main(argv)
        finally:
            if old is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = old
        text = out.getvalue().rstrip()
        if not text:
            raise self.error(f"bpnet {' '.join(argv)} printed nothing")
        return [nodes.literal_block(text, text, language="text")]


_KINDS = {"class": ("class", "exception"), "meth": ("method", "classmethod", "staticmethod"),
          "func": ("function",), "mod": ("module",), "data": ("data",),
          "attr": ("attribute", "property", "data"), "obj": None, "exc": ("exception",)}


def resolve_short_name(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    kinds = _KINDS.get(node["reftype"], ())
    objects = env.get_domain("py").objects
    if target.startswith("bpnet.") and target not in objects:
        # a re-exported name (bpnet.to_numpy, bpnet.backend.to_numpy) is documented
        # where it is defined (bpnet.backend.transfer.to_numpy)
        package, _, target = target.rpartition(".")
        found = [name for name, entry in objects.items()
                 if name.startswith(package + ".") and name.endswith("." + target)
                 and not entry.aliased and (kinds is None or entry.objtype in kinds)]
        if len(found) == 1:
            entry = objects[found[0]]
            return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id,
                                contnode, found[0])
        return None
    found = [name for name, entry in objects.items()
             if name.startswith("bpnet") and (name == target or name.endswith("." + target))
             and not entry.aliased and (kinds is None or entry.objtype in kinds)]
    if len(found) > 1:  # the same name at two levels (bpnet.MLP and bpnet.model.MLP)
        shortest = min(found, key=len)
        found = [shortest] if all(n.endswith(shortest.rsplit(".", 1)[-1]) for n in found) \
            and len({objects[n].node_id for n in found}) == 1 else found
    if len(found) != 1:
        return None
    entry = objects[found[0]]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id,
                        contnode, found[0])


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("bpnet-usage", BpnetUsage)
    app.connect("missing-reference", resolve_short_name)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
