// SPDX-License-Identifier: MIT
/*
 * Pictures of a model through gnuplot: the measured and the simulated output
 * over time (the training and validation parts marked), and the impulse
 * response. The data goes to a temporary file, the script to gnuplot's
 * standard input; SVG or PNG by the file's extension.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char *terminal(const char *path)
{
	size_t n = strlen(path);

	if (n > 4 && !strcmp(path + n - 4, ".svg"))
		return "svg size 960,720 dynamic noenhanced background rgb 'white'";
	if (n > 4 && !strcmp(path + n - 4, ".png"))
		return "pngcairo size 960,720 noenhanced";
	return NULL;
}

/* One block per panel: time measured simulated, then a blank line pair, then the impulse. */
static int write_data(int fd, const double *time, const double *y, const double *yhat, size_t n,
		      const double *impulse, size_t nimp)
{
	FILE *f = fdopen(fd, "w");

	if (!f)
		return -errno;
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%.6f %.9g %.9g\n", time[i] - time[0], y[i], yhat[i]);
	fprintf(f, "\n\n");
	for (size_t k = 0; k < nimp; k++)
		fprintf(f, "%zu %.9g\n", k, impulse[k]);
	return fclose(f) ? -errno : 0;
}

static void quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++)
		if (*s != '"' && *s != '\\')
			fputc(*s, f);
	fputc('"', f);
}

int cli_plot_fit(const char *path, const double *time, const double *y, const double *yhat,
		 size_t n, size_t ntrain, const char *yname, const double *impulse, size_t nimp,
		 const char *uname)
{
	char data[] = "/tmp/vmscope-plot-XXXXXX";
	const char *term = terminal(path);
	FILE *gp;
	int fd, err, status;

	if (!term)
		return cli_fail("--plot %s: name an .svg or a .png file", path);
	fd = mkstemp(data);
	if (fd < 0)
		return cli_fail("cannot make a temporary file: %s", strerror(errno));
	err = write_data(fd, time, y, yhat, n, impulse, nimp);
	if (err) {
		unlink(data);
		return cli_fail("cannot write the plot's data: %s", strerror(-err));
	}
	gp = popen("gnuplot", "w");
	if (!gp) {
		unlink(data);
		return cli_fail("cannot run gnuplot: %s", strerror(errno));
	}
	fprintf(gp, "set terminal %s\nset output ", term);
	quoted(gp, path);
	fprintf(gp, "\nset multiplot layout 2,1\nset grid\nset key top left\n"
		    "set xlabel 'seconds'\nset title ");
	quoted(gp, yname);
	fprintf(gp, "\nset arrow from %.6f, graph 0 to %.6f, graph 1 nohead dashtype 2\n",
		ntrain < n ? time[ntrain] - time[0] : 0.0, ntrain < n ? time[ntrain] - time[0] : 0.0);
	fprintf(gp, "plot '%s' index 0 using 1:2 with lines lw 2 title 'measured (guest)', "
		    "'' index 0 using 1:3 with lines lw 2 title 'estimated from the host "
		    "(training | validation)'\n",
		data);
	fprintf(gp, "unset arrow\nset xlabel 'samples after the impulse'\nset title ");
	{
		char title[160];

		snprintf(title, sizeof(title), "impulse response to %s", uname);
		quoted(gp, title);
	}
	fprintf(gp, "\nplot '%s' index 1 using 1:2 with impulses lw 3 notitle, "
		    "'' index 1 using 1:2 with points pt 7 notitle\nunset multiplot\n",
		data);
	status = pclose(gp);
	unlink(data);
	if (status)
		return cli_fail("gnuplot could not draw %s (exit status %d)", path, status);
	return 0;
}
