"""The person's settings the node keeps in the store: their keys and defaults.

A leaf module, so services and the control socket can name a setting without importing
the node's service module.
"""

SETTING_DOWNLOAD_DIR = "download_dir"
TEXT_SETTINGS = {SETTING_DOWNLOAD_DIR: ""}
SETTING_READ_RECEIPTS = "read_receipts"
SETTING_TYPING = "typing_indicators"
SETTING_ANNOUNCE = "announce"
BOOL_SETTINGS = {SETTING_READ_RECEIPTS: True, SETTING_TYPING: True, SETTING_ANNOUNCE: True}
