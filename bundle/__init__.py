"""Offline bundle: every artifact an inventory needs, in one directory any HTTP server can serve.

``python -m bundle build --inventory INV --out DIR`` collects the Debian packages the roles install
(with their dependency closure, as a signed flat apt repository), the archives the inventory names
(each checked against its pinned sha256) and the lab's test images, and writes ``MANIFEST.sha256``.
Nodes use it through ``roles/bundle_source`` (``pouch_bundle_url``). The lab's own apt repository
is built by the same code (``bundle.debrepo``).
"""
