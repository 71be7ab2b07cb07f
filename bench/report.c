/* SPDX-License-Identifier: MIT */
/* writevv-bench: terminal tables, CSV, gnuplot figures, calibration. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

const char *fmt_size(size_t b, char *buf, size_t len)
{
	if (b >= 1024 * 1024 && b % (1024 * 1024) == 0)
		snprintf(buf, len, "%zu MiB", b >> 20);
	else if (b >= 1024 && b % 1024 == 0)
		snprintf(buf, len, "%zu KiB", b >> 10);
	else
		snprintf(buf, len, "%zu B", b);
	return buf;
}

static double ratio_open(const struct cell *c, int e)
{
	if (!c->open_calls || !c->e[ENG_LOOP].ran || !c->e[e].ran || c->e[e].cpu_open <= 0)
		return NAN;
	return c->e[ENG_LOOP].cpu_open / c->e[e].cpu_open;
}

static double ratio_closed(const struct cell *c, int e)
{
	if (!c->closed_calls || !c->e[ENG_LOOP].ran || !c->e[e].ran || c->e[e].cpu <= 0)
		return NAN;
	return c->e[ENG_LOOP].cpu / c->e[e].cpu;
}

static const char *num(char *buf, size_t len, const char *fmt, double v)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, fmt, v);
	return buf;
}

void report_cell(const struct cell *c)
{
	char sz[32];
	int e;

	printf("\n== %s | %s | %d targets x %s (%d iovec%s) | per rep: %d closed-loop + %d open-loop calls"
	       " | %d reps | %.1f s ==\n",
	       c->recv, c->workload, c->n, fmt_size(c->payload, sz, sizeof(sz)), c->iovcnt,
	       c->iovcnt > 1 ? "s" : "", c->closed_calls, c->open_calls, c->reps, c->secs);
	printf("%-12s %9s %17s %8s | %9s %8s | %8s | %9s %9s | %11s %7s  %s\n", "", "open-loop",
	       "", "", "closed", "", "open", "latency", "", "segs/write", "", "");
	printf("%-12s %9s %17s %8s | %9s %8s | %8s | %9s %9s | %11s %7s  %s\n", "engine", "cpu ns/wr",
	       "(min..max)", "loop/eng", "cpu ns/wr", "loop/eng", "MB/s", "p50 us", "p99 us",
	       "closed/open", "retr+TLP", "notes");
	for (e = 0; e < N_ENGINES; e++) {
		const struct eng_result *r = &c->e[e];
		char lohi[48] = "", note[128] = "", b[9][24];

		if (!r->ran) {
			if (r->why[0])
				printf("%-12s %s\n", engines[e].name, r->why);
			continue;
		}
		if (c->open_calls)
			snprintf(lohi, sizeof(lohi), "(%.0f..%.0f)", r->cpu_open_lo, r->cpu_open_hi);
		if (e == ENG_SENDZC && r->zc.notifs)
			snprintf(note, sizeof(note), "zc notifs %llu, copied %llu (%.0f%%)",
				 (unsigned long long)r->zc.notifs, (unsigned long long)r->zc.copied,
				 100.0 * (double)r->zc.copied / (double)r->zc.notifs);
		if (r->resubmits)
			snprintf(note + strlen(note), sizeof(note) - strlen(note),
				 "%s%llu short writes resubmitted", note[0] ? "; " : "",
				 (unsigned long long)r->resubmits);
		if (r->backlog_drops)
			snprintf(note + strlen(note), sizeof(note) - strlen(note),
				 "%s%llu backlog drops", note[0] ? "; " : "",
				 (unsigned long long)r->backlog_drops);
		if (r->lat_valid && r->lat_open)
			snprintf(note + strlen(note), sizeof(note) - strlen(note), "%slatency incl. queueing",
				 note[0] ? "; " : "");
		printf("%-12s %9s %17s %7sx | %9s %7sx | %8s | %9s %9s | %5s/%-5s %7llu  %s\n",
		       engines[e].name, num(b[0], 24, "%.1f", c->open_calls ? r->cpu_open : NAN), lohi,
		       num(b[1], 24, "%.2f", ratio_open(c, e)),
		       num(b[2], 24, "%.1f", c->closed_calls ? r->cpu : NAN),
		       num(b[3], 24, "%.2f", ratio_closed(c, e)),
		       num(b[4], 24, "%.1f", c->open_calls ? r->mbps : NAN),
		       num(b[5], 24, "%.1f", r->lat_valid ? r->p50_us : NAN),
		       num(b[6], 24, "%.1f", r->lat_valid ? r->p99_us : NAN),
		       num(b[7], 24, "%.2f", c->closed_calls ? r->segs : NAN),
		       num(b[8], 24, "%.2f", c->open_calls ? r->segs_open : NAN),
		       (unsigned long long)r->retrans, note);
	}
	if (!strcmp(c->workload, "writevvtest")) {
		if (c->e[ENG_WVV_KERNEL].ran && c->e[ENG_WVV_USER].ran)
			printf("writevvtest kernel vs userland (userland CPU / kernel CPU): %.2fx "
			       "(the original FreeBSD writevvtest: 6.23x)\n",
			       c->e[ENG_WVV_USER].cpu_open / c->e[ENG_WVV_KERNEL].cpu_open);
		else
			printf("writevvtest kernel vs userland: n/a (the kernel engine did not run)\n");
	}
	fflush(stdout);
}

/* ---- CSV ----------------------------------------------------------------------*/
static void csv_num(FILE *f, const char *fmt, double v)
{
	if (!isnan(v))
		fprintf(f, fmt, v);
	fputc(',', f);
}

int csv_write(const char *path)
{
	FILE *f = fopen(path, "w");
	int i, e;

	if (!f) {
		fprintf(stderr, "writevv-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "recv,workload,targets,payload,iovcnt,closed_calls,open_calls,reps,engine,status,"
		   "cpu_open_ns,cpu_open_min,cpu_open_max,ratio_open,cpu_closed_ns,cpu_closed_min,"
		   "cpu_closed_max,ratio_closed,wall_open_ns,mbps_open,lat_p50_us,lat_p99_us,lat_phase,"
		   "segs_closed,segs_open,retrans,backlog_drops,zc_notifs,zc_copied,why\n");
	for (i = 0; i < ncells; i++) {
		const struct cell *c = &cells[i];

		for (e = 0; e < N_ENGINES; e++) {
			const struct eng_result *r = &c->e[e];
			bool o = c->open_calls && r->ran, cl = c->closed_calls && r->ran;

			if (!r->ran && !r->why[0])
				continue;
			fprintf(f, "%s,%s,%d,%zu,%d,%d,%d,%d,%s,%s,", c->recv, c->workload, c->n,
				c->payload, c->iovcnt, c->closed_calls, c->open_calls, c->reps,
				engines[e].name, r->ran ? "ok" : "skipped");
			csv_num(f, "%.1f", o ? r->cpu_open : NAN);
			csv_num(f, "%.1f", o ? r->cpu_open_lo : NAN);
			csv_num(f, "%.1f", o ? r->cpu_open_hi : NAN);
			csv_num(f, "%.3f", ratio_open(c, e));
			csv_num(f, "%.1f", cl ? r->cpu : NAN);
			csv_num(f, "%.1f", cl ? r->cpu_lo : NAN);
			csv_num(f, "%.1f", cl ? r->cpu_hi : NAN);
			csv_num(f, "%.3f", ratio_closed(c, e));
			csv_num(f, "%.1f", o ? r->wall_ns : NAN);
			csv_num(f, "%.1f", o ? r->mbps : NAN);
			csv_num(f, "%.1f", r->ran && r->lat_valid ? r->p50_us : NAN);
			csv_num(f, "%.1f", r->ran && r->lat_valid ? r->p99_us : NAN);
			fprintf(f, "%s,", !r->ran || !r->lat_valid ? "" : r->lat_open ? "open" : "closed");
			csv_num(f, "%.3f", cl ? r->segs : NAN);
			csv_num(f, "%.3f", o ? r->segs_open : NAN);
			if (r->ran)
				fprintf(f, "%llu,%llu,%llu,%llu,", (unsigned long long)r->retrans,
					(unsigned long long)r->backlog_drops,
					(unsigned long long)r->zc.notifs, (unsigned long long)r->zc.copied);
			else
				fprintf(f, ",,,,");
			fprintf(f, "\"%s\"\n", r->why);
		}
	}
	fclose(f);
	return 0;
}

/* ---- gnuplot -------------------------------------------------------------------*/
/* The distinct target counts (or payload sizes) of recv's grid cells, in
 * the order met, at most 16. */
static int uniq_grid(const char *recv, bool payloads, size_t *out)
{
	int i, j, n = 0;

	for (i = 0; i < ncells; i++) {
		size_t v = payloads ? cells[i].payload : (size_t)cells[i].n;

		if (strcmp(cells[i].recv, recv) || strcmp(cells[i].workload, "grid"))
			continue;
		for (j = 0; j < n && out[j] != v; j++)
			;
		if (j == n && n < 16)
			out[n++] = v;
	}
	return n;
}

static int uniq_targets(const char *recv, int *out)
{
	size_t v[16];
	int i, n = uniq_grid(recv, false, v);

	for (i = 0; i < n; i++)
		out[i] = (int)v[i];
	return n;
}

static int uniq_payloads(const char *recv, size_t *out)
{
	return uniq_grid(recv, true, out);
}

static const struct cell *find_cell(const char *recv, int n, size_t p)
{
	int i;

	for (i = 0; i < ncells; i++)
		if (!strcmp(cells[i].recv, recv) && !strcmp(cells[i].workload, "grid") &&
		    cells[i].n == n && cells[i].payload == p)
			return &cells[i];
	return NULL;
}

static void block_row(FILE *f, double x, const struct cell *c, int e)
{
	const struct eng_result *r = &c->e[e];

	fprintf(f, "%.0f %.2f %.2f %.2f %.3f %.2f %.3f %.2f\n", x,
		c->open_calls ? r->cpu_open : NAN, r->lat_valid ? r->p50_us : NAN,
		r->lat_valid ? r->p99_us : NAN, ratio_open(c, e), c->closed_calls ? r->cpu : NAN,
		ratio_closed(c, e), c->open_calls ? r->mbps : NAN);
}

/* Datablocks $p<N>_<e> (x = payload) and $t<P>_<e> (x = targets), columns
 * x cpu_open p50 p99 ratio_open cpu_closed ratio_closed mbps.
 * Returns a bitmask of engines with data. */
static unsigned write_blocks(FILE *f, const char *recv, const int *tg, int nt, const size_t *pl,
			     int np)
{
	unsigned have = 0;
	int i, j, e;

	for (e = 0; e < N_ENGINES; e++) {
		for (i = 0; i < nt; i++) {
			fprintf(f, "$p%d_%d << EOD\n", tg[i], e);
			for (j = 0; j < np; j++) {
				const struct cell *c = find_cell(recv, tg[i], pl[j]);

				if (c && c->e[e].ran) {
					block_row(f, (double)pl[j], c, e);
					have |= 1u << e;
				}
			}
			fprintf(f, "EOD\n");
		}
		for (j = 0; j < np; j++) {
			fprintf(f, "$t%zu_%d << EOD\n", pl[j], e);
			for (i = 0; i < nt; i++) {
				const struct cell *c = find_cell(recv, tg[i], pl[j]);

				if (c && c->e[e].ran)
					block_row(f, (double)tg[i], c, e);
			}
			fprintf(f, "EOD\n");
		}
	}
	return have;
}

static const char *eng_color[N_ENGINES] = {
	"#000000", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#17becf", "#bcbd22",
	"#e377c2", "#8c564b",
};

enum view { V_CPU, V_CPU_CLOSED, V_LAT, V_RATIO, V_MBPS };

static void panel_plot(FILE *f, const char *block_prefix, long key, unsigned have, enum view v)
{
	bool first = true;
	int e;

	fprintf(f, "plot ");
	for (e = 0; e < N_ENGINES; e++) {
		if (!(have & (1u << e)))
			continue;
		if (v == V_RATIO && e == ENG_LOOP)
			continue;
		if (v != V_LAT)
			fprintf(f, "%s$%s%ld_%d using 1:%d with linespoints lw 2 pt 7 ps 0.8 lc rgb '%s' title '%s'",
				first ? "" : ", \\\n     ", block_prefix, key, e,
				v == V_CPU ? 2 : v == V_CPU_CLOSED ? 6 : v == V_RATIO ? 5 : 8, eng_color[e],
				engines[e].name);
		else
			fprintf(f, "%s$%s%ld_%d using 1:3 with linespoints lw 2 pt 7 ps 0.8 lc rgb '%s' "
				   "title '%s p50', \\\n     $%s%ld_%d using 1:4 with linespoints lw 1 dt 2 "
				   "pt 6 ps 0.8 lc rgb '%s' notitle",
				first ? "" : ", \\\n     ", block_prefix, key, e, eng_color[e],
				engines[e].name, block_prefix, key, e, eng_color[e]);
		first = false;
	}
	if (v == V_RATIO)
		fprintf(f, ", 1 with lines lc rgb '#888888' dt 3 title 'loop = 1'");
	fprintf(f, "\n");
}

static void layout(int k, int *rows, int *cols)
{
	*cols = k < 3 ? k : (k == 4 ? 2 : 3);
	*rows = (k + *cols - 1) / *cols;
}

static void figure(FILE *f, const char *dir, const char *recv, const char *name, const char *title,
		   enum view v, bool by_payload, const int *tg, int nt, const size_t *pl, int np,
		   unsigned have)
{
	int rows, cols, i, k = by_payload ? nt : np;
	char sz[32];

	layout(k, &rows, &cols);
	fprintf(f, "set terminal pngcairo size %d,%d font ',10'\n", 520 * cols + 40, 440 * rows + 60);
	fprintf(f, "set output '%s/%s_%s.png'\n", dir, name, recv);
	fprintf(f, "set multiplot layout %d,%d title '%s (receivers: %s; median of reps)' font ',12'\n",
		rows, cols, title, recv);
	fprintf(f, "set grid\nset key below horizontal font ',9'\nset format y '%%g'\n");
	if (v == V_RATIO)
		fprintf(f, "set logscale x\nunset logscale y\nset ylabel 'loop CPU / engine CPU (>1: engine cheaper)'\n");
	else
		fprintf(f, "set logscale xy\nset ylabel '%s'\n",
			v == V_CPU ? "sender CPU ns per target-write (open loop)"
			: v == V_CPU_CLOSED ? "sender CPU ns per target-write (closed loop)"
			: v == V_MBPS ? "delivered MB/s (open loop)"
				      : "delivery latency us (p50 solid, p99 dashed)");
	if (by_payload) {
		fprintf(f, "unset xlabel\nset xtics (");
		for (i = 0; i < np; i++)
			fprintf(f, "%s\"%s\" %zu", i ? ", " : "", fmt_size(pl[i], sz, sizeof(sz)), pl[i]);
		fprintf(f, ")\nset xrange [%g:%g]\n", (double)pl[0] / 1.6, (double)pl[np - 1] * 1.6);
		for (i = 0; i < nt; i++) {
			fprintf(f, "set title '%d targets'\n", tg[i]);
			panel_plot(f, "p", tg[i], have, v);
		}
	} else {
		fprintf(f, "unset xlabel\nset xtics (");
		for (i = 0; i < nt; i++)
			fprintf(f, "%s\"%d\" %d", i ? ", " : "", tg[i], tg[i]);
		fprintf(f, ")\nset xrange [%g:%g]\n", tg[0] / 1.6, tg[nt - 1] * 1.6);
		for (i = 0; i < np; i++) {
			fprintf(f, "set title 'payload %s'\n", fmt_size(pl[i], sz, sizeof(sz)));
			panel_plot(f, "t", (long)pl[i], have, v);
		}
	}
	fprintf(f, "unset multiplot\nunset output\n");
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return (x > y) - (x < y);
}

/* recv's grid axes: its target counts and payload sizes, sorted; false when
 * it has no grid cell. */
static bool grid_axes(const char *recv, int *tg, int *nt, size_t *pl, int *np)
{
	*nt = uniq_targets(recv, tg);
	*np = uniq_payloads(recv, pl);
	if (!*nt || !*np)
		return false;
	qsort(tg, (size_t)*nt, sizeof(int), cmp_int);
	qsort(pl, (size_t)*np, sizeof(size_t), cmp_size);
	return true;
}

int plot_write(const char *dir)
{
	int m, nt, np, rc = 0;
	int tg[16];
	size_t pl[16];

	if (mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "writevv-bench: mkdir %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (m = 0; m < n_recv_modes; m++) {
		const char *recv = recv_modes[m].name;
		char path[512], cmd[600];
		unsigned have;
		FILE *f;

		if (!grid_axes(recv, tg, &nt, pl, &np))
			continue;
		snprintf(path, sizeof(path), "%s/plots_%s.gp", dir, recv);
		f = fopen(path, "w");
		if (!f) {
			fprintf(stderr, "writevv-bench: %s: %s\n", path, strerror(errno));
			return -1;
		}
		fprintf(f, "# generated by writevv-bench; run: gnuplot %s\n", path);
		have = write_blocks(f, recv, tg, nt, pl, np);
		figure(f, dir, recv, "cpu_vs_payload", "Sender CPU per target-write vs payload (open loop)",
		       V_CPU, true, tg, nt, pl, np, have);
		figure(f, dir, recv, "cpu_vs_targets", "Sender CPU per target-write vs targets (open loop)",
		       V_CPU, false, tg, nt, pl, np, have);
		figure(f, dir, recv, "cpu_closed_vs_payload",
		       "Sender CPU per target-write vs payload (closed loop)", V_CPU_CLOSED, true, tg, nt,
		       pl, np, have);
		figure(f, dir, recv, "mbps_vs_payload", "Delivered throughput vs payload (open loop)",
		       V_MBPS, true, tg, nt, pl, np, have);
		figure(f, dir, recv, "lat_vs_payload", "Delivery latency (call start to last byte) vs payload",
		       V_LAT, true, tg, nt, pl, np, have);
		figure(f, dir, recv, "lat_vs_targets", "Delivery latency (call start to last byte) vs targets",
		       V_LAT, false, tg, nt, pl, np, have);
		figure(f, dir, recv, "ratio_vs_payload", "CPU ratio loop/engine vs payload (open loop)", V_RATIO, true,
		       tg, nt, pl, np, have);
		fclose(f);
		snprintf(cmd, sizeof(cmd), "gnuplot '%s'", path);
		if (system(cmd)) {
			fprintf(stderr, "writevv-bench: gnuplot failed on %s (is gnuplot installed?)\n", path);
			rc = -1;
		}
	}
	return rc;
}

/* ---- calibration -----------------------------------------------------------*/
/* the figure calibration ranks by: open-loop CPU, closed-loop if none */
static double cal_cpu(const struct cell *c, int e)
{
	return c->open_calls ? c->e[e].cpu_open : c->e[e].cpu;
}

/*
 * A fixed threshold for the default mode (WRITEVV_SENDFILE_MIN), instead of
 * its learnt choice: the smallest measured payload from which the sendfile
 * engine used less CPU than the io_uring engine at every larger payload too.
 */
static void print_sendfile_min(const char *recv, const size_t *pl, int np,
			       const double *uring_gm, const double *sendfile_gm)
{
	int j, from = np;

	for (j = np - 1; j >= 0; j--) {
		if (isnan(uring_gm[j]) || isnan(sendfile_gm[j]))
			return; /* both engines must have run at every payload */
		if (sendfile_gm[j] >= uring_gm[j])
			break;
		from = j;
	}
	if (from == np)
		printf("calibrate.%s.WRITEVV_SENDFILE_MIN=none (io_uring used less CPU at every"
		       " measured payload)\n", recv);
	else
		printf("calibrate.%s.WRITEVV_SENDFILE_MIN=%zu (sendfile/io_uring CPU there: %.2f)\n",
		       recv, pl[from], sendfile_gm[from] / uring_gm[from]);
}

void calibrate_print(void)
{
	int m, i, j, e, nt, np;
	int tg[16];
	size_t pl[16];

	printf("\n# calibrate: fastest engine (least open-loop sender CPU per target-write) per payload,\n"
	       "# geometric mean over the target counts; kernel_vs_user = wvv-user CPU / wvv-kernel CPU\n"
	       "# (> 1: the kernel engine is cheaper, which is what WRITEVV_MODE_DEFAULT should pick)\n");
	for (m = 0; m < n_recv_modes; m++) {
		const char *recv = recv_modes[m].name;
		const char *best_name[16];
		double best_v[16], kvu[16];
		size_t best_pl[16];
		double uring_gm[16], sendfile_gm[16];
		char cname[32];
		int nbest = 0;

		if (!grid_axes(recv, tg, &nt, pl, &np))
			continue;
		for (j = 0; j < np; j++) {
			double gm[N_ENGINES];
			int cnt[N_ENGINES] = { 0 }, best = -1;
			double kk = 0;
			int kn = 0;

			for (e = 0; e < N_ENGINES; e++)
				gm[e] = 0;
			for (i = 0; i < nt; i++) {
				const struct cell *c = find_cell(recv, tg[i], pl[j]);

				if (!c)
					continue;
				for (e = 0; e < N_ENGINES; e++)
					if (c->e[e].ran && cal_cpu(c, e) > 0) {
						gm[e] += log(cal_cpu(c, e));
						cnt[e]++;
					}
				if (c->e[ENG_WVV_KERNEL].ran && c->e[ENG_WVV_USER].ran) {
					kk += log(cal_cpu(c, ENG_WVV_USER) / cal_cpu(c, ENG_WVV_KERNEL));
					kn++;
				}
				/* per cell */
				{
					int b = -1;

					for (e = 0; e < N_ENGINES; e++)
						if (c->e[e].ran && (b < 0 || cal_cpu(c, e) < cal_cpu(c, b)))
							b = e;
					if (b >= 0)
						printf("calibrate.%s.targets.%d.payload.%zu=%s\n", recv, tg[i],
						       pl[j], engines[b].name);
				}
			}
			for (e = 0; e < N_ENGINES; e++) {
				if (cnt[e] != nt) {
					gm[e] = NAN; /* must have run in every cell of the row */
					continue;
				}
				gm[e] = exp(gm[e] / cnt[e]);
				if (best < 0 || gm[e] < gm[best])
					best = e;
			}
			uring_gm[j] = gm[ENG_WVV_URING];
			sendfile_gm[j] = gm[ENG_WVV_SENDFILE];
			if (best < 0)
				continue;
			best_pl[nbest] = pl[j];
			best_name[nbest] = engines[best].name;
			best_v[nbest] = gm[best];
			kvu[nbest] = kn ? exp(kk / kn) : NAN;
			printf("calibrate.%s.payload.%zu=%s cpu_ns=%.1f loop_ns=%.1f kernel_vs_user=%.3f\n",
			       recv, pl[j], engines[best].name, gm[best],
			       cnt[ENG_LOOP] == nt ? gm[ENG_LOOP] : NAN, kvu[nbest]);
			nbest++;
		}
		print_sendfile_min(recv, pl, np, uring_gm, sendfile_gm);
		snprintf(cname, sizeof(cname), "%s", recv);
		for (i = 0; cname[i]; i++)
			if (cname[i] == '-')
				cname[i] = '_';
		printf("/* writevv-bench --calibrate, receivers '%s' */\n", recv);
		printf("static const struct { size_t payload; const char *fastest; double cpu_ns;"
		       " double kernel_vs_user; } wvv_calib_%s[] = {\n", cname);
		for (j = 0; j < nbest; j++)
			printf("\t{ %zu, \"%s\", %.1f, %.3f },\n", best_pl[j], best_name[j], best_v[j],
			       isnan(kvu[j]) ? 0.0 : kvu[j]);
		printf("};\n");
	}
}
