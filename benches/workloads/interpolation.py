n = 0
last = ""
for i in range(300000):
    x = i / 7
    last = f"item {i} is {x:.2f}"
    n += len(last)
print("checksum", n, last)
