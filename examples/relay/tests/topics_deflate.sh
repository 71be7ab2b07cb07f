#!/usr/bin/env bash
# topics.sh with --ws-deflate --client-publish: the Python websockets and
# Node ws subscribers negotiate permessage-deflate (both offer it by default)
# and must still get every message; a deflate client publishes compressed
# messages (up to 1 MiB) that every subscriber must get intact.
TOPICS_EXTRA="--ws-deflate --client-publish"
export TOPICS_DEFLATE=1
. "$(dirname "$0")/topics.sh"
