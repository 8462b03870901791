import subprocess

src = subprocess.Popen(["head", "-c", "1G", "/dev/zero"], stdout=subprocess.PIPE)
wc = subprocess.Popen(["wc", "-c"], stdin=src.stdout, stdout=subprocess.PIPE)
src.stdout.close()
out = wc.stdout.read()
src.wait()
wc.wait()
print("checksum", int(out.strip()))
