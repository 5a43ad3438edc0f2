"""SFT data: reading records in their formats, rendering chats with labels, the default synthetic task, \
prepared rows."""
