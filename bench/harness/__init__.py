"""The benchmarks' one harness.

Each script (`python bench/NAME.py`, which puts bench/ on the import path) starts a
peer server and Strongroom on free 127.0.0.1 ports (`servers`: Apache, OpenSSH,
Strongroom), runs the same client against both (`clients`: curl, OpenSSH sftp, psftp,
rclone; `measure.measure`: every row --repeat times, the server order alternating
between rounds), and prints one table (`measure.print_table`): the median, the best
and the range of the runs for each server, the ratio Strongroom/peer of the medians
and of the bests, each server's CPU-seconds per GB (user + system of its processes,
which other load on the machine barely moves), peak RSS, and every run's figure.
`profiling` samples the daemon with py-spy during a row; `procs` holds the process,
/proc and test-file helpers. Only 127.0.0.1 is used, and every wait has a deadline.
"""