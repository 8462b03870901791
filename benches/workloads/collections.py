xs = []
for i in range(300000):
    xs.append("key" + str(i))
m = {}
for k in xs:
    m[k] = len(k)
print("checksum", len(xs), len(m), sum(m.values()))
