# A Python websockets subscriber that writes every binary frame's bytes to a
# file until the server closes or no frame came for IDLE seconds; prints
# "connected" once the handshake is done and a JSON summary at the end.
# usage: wsdump.py URL OUTFILE IDLE_S
import asyncio
import json
import sys

import websockets


async def main():
    frames = texts = size = 0
    code = None
    with open(sys.argv[2], "wb") as f:
        async with websockets.connect(sys.argv[1], max_size=None) as ws:
            print("connected", flush=True)
            try:
                while True:
                    m = await asyncio.wait_for(ws.recv(), float(sys.argv[3]))
                    if isinstance(m, str):
                        texts += 1
                        continue
                    f.write(m)
                    frames += 1
                    size += len(m)
            except asyncio.TimeoutError:
                pass
            except websockets.ConnectionClosed as e:
                code = e.code
    print(json.dumps({"frames": frames, "texts": texts, "bytes": size, "close": code}), flush=True)


asyncio.run(main())
