/* wb_fake_server.c: a stand-in run for the workbench's end-to-end test. It
 * serves control.sock in the run folder given as argv[1] with the server
 * library and answers the commands of core/control/COMMANDS.md with made-up
 * but well-formed numbers: a loss that falls, a pausable step counter (about
 * 50 steps a second), hparams that can be set, a layers table, an inspect map
 * (a ring) and a probe input (a "7"). Built by tests/e2e/test_workbench.sh
 * against liblathe_core.a; not part of the lathe build.
 *   usage: wb_fake_server <run dir> [seconds to live] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lathe/control.h"
#include "lathe/strbuf.h"

static const char *state = "running";
static long step, total = 1875;
static double lr = 1.0, rho = 0.9, p_drop = 0.25, t0;
static int batch = 32, nchanges;
static char changes[64][160];
static lt_ctl_server *srv;

static double loss_at(long s) { return 0.1 + 2.2 * exp(-s / 300.0) + 0.05 * sin(s * 0.7); }

static void status_body(lt_sb *b) {
    double el = lt_now() - t0;
    lt_sb_printf(b,
                 "state=%s\nexperiment=mnist_cnn\nepoch=1\nmax_epochs=1\nstep=%ld\ntotal_steps=%ld\nsamples=%ld\n"
                 "samples_per_s=%.6g\ntrain_loss=%.6g\nval_loss=nan\nval_acc=nan\ntest_acc=nan\nlr=%.6g\nelapsed=%.6g\n"
                 "eta=%.6g\ndevice=cpu\nclients=%d\nrun_dir=fake\nbatch=%ld\nbatches=%ld\n",
                 state, step, total, step * batch, 1600.0, loss_at(step), lr, el, (total - step) / 50.0,
                 lt_ctl_server_client_count(srv), step, total);
}

static const char *layer_names[] = {"conv2d_1", "conv2d_2", "max_pooling2d", "dropout_1",
                                    "flatten",  "dense_1",  "dropout_2",     "dense_2"};
static const char *layer_types[] = {"Conv2D", "Conv2D", "MaxPool2D", "Dropout", "Flatten", "Dense", "Dropout", "Dense"};
static const char *layer_shapes[] = {"32x26x26", "64x24x24", "64x12x12", "64x12x12", "9216", "128", "128", "10"};
static const long layer_params[] = {320, 18496, 0, 0, 0, 1179776, 0, 1290};

static void layers_body(lt_sb *b) {
    for (int i = 0; i < 8; i++) {
        double g = layer_params[i] ? 0.1 / (1 + step * 0.01) : NAN;
        lt_sb_printf(
            b,
            "layer=%s type=%s shape=%s params=%ld mean=%.6g std=%.6g min=%.6g max=%.6g zeros=%.6g nonfinite=0 dead=%s ",
            layer_names[i], layer_types[i], layer_shapes[i], layer_params[i], 0.1 * i, 0.5, -1.0, 2.0 + i, 0.3,
            i < 4 ? (i == 1 ? "1" : "0") : "");
        if (layer_params[i])
            lt_sb_printf(b, "weight_norm=%.6g grad_norm=%.6g update_ratio=%.6g\n", 5.0, g, lr * g / 5);
        else
            lt_sb_printf(b, "weight_norm= grad_norm= update_ratio=\n");
    }
}

static void hparams_body(lt_sb *b) {
    lt_sb_printf(b, "lr=%.6g\nrho=%.6g\neps=1e-07\nweight_decay=0\ndropout_1.p=%.6g\ndropout_2.p=0.5\nbatch_size=%d\n",
                 lr, rho, p_drop, batch);
}

static void reply(lt_ctl_request *r, int ok, lt_sb *b) {
    lt_ctl_server_reply(srv, r, ok, b->n ? b->p : (ok ? "" : "error"));
}

static void handle(lt_ctl_request *r) {
    int argc = r->argc; /* the words as the client split them */
    char **argv = r->argv;
    lt_sb b = {0};
    lt_sb_printf(&b, "%s", "");
    const char *c = argv[0];
    int ok = 1;
    if (!strcmp(c, "status"))
        status_body(&b);
    else if (!strcmp(c, "pause") || (!strcmp(c, "step"))) {
        if (!strcmp(c, "step")) step += argc > 1 ? atol(argv[1]) : 1;
        state = "paused";
        lt_ctl_server_event(srv, "state paused");
        lt_sb_printf(&b, "state=paused\nstep=%ld\n", step);
    } else if (!strcmp(c, "resume")) {
        state = "running";
        lt_ctl_server_event(srv, "state running");
        lt_sb_printf(&b, "state=running\nstep=%ld\n", step);
    } else if (!strcmp(c, "validate")) {
        char ev[96];
        snprintf(ev, sizeof ev, "point val_loss %ld %.6g", step, loss_at(step) * 1.1);
        lt_ctl_server_event(srv, ev);
        snprintf(ev, sizeof ev, "point val_acc %ld %.6g", step, 1 - loss_at(step) / 2.5);
        lt_ctl_server_event(srv, ev);
        lt_sb_printf(&b, "val_loss=%.6g\nval_acc=%.6g\nstep=%ld\n", loss_at(step) * 1.1, 1 - loss_at(step) / 2.5, step);
    } else if (!strcmp(c, "hparams"))
        hparams_body(&b);
    else if (!strcmp(c, "layers"))
        layers_body(&b);
    else if (!strcmp(c, "changes") || !strcmp(c, "history")) {
        if (!strcmp(c, "history"))
            for (long s = 0; s <= step; s += 10)
                lt_sb_printf(&b, "point=train_loss %ld %.6g\npoint=lr %ld %.6g\n", s, loss_at(s), s, lr);
        for (int i = 0; i < nchanges; i++) lt_sb_printf(&b, "change=%s\n", changes[i]);
    } else if (!strcmp(c, "get") && argc == 2) {
        lt_sb h = {0};
        hparams_body(&h);
        char *s = strstr(h.p, argv[1]);
        if (s && s[strlen(argv[1])] == '=')
            lt_sb_printf(&b, "%.*s\n", (int)strcspn(s, "\n"), s);
        else
            ok = 0,
            lt_sb_printf(&b, "unknown hparam '%s' (known: lr rho eps weight_decay dropout_1.p dropout_2.p batch_size)",
                         argv[1]);
        lt_sb_free(&h);
    } else if (!strcmp(c, "set") && argc == 3) {
        char *end;
        double v = strtod(argv[2], &end);
        double *slot = !strcmp(argv[1], "lr")            ? &lr
                       : !strcmp(argv[1], "rho")         ? &rho
                       : !strcmp(argv[1], "dropout_1.p") ? &p_drop
                                                         : NULL;
        if (!slot || *end || !(v >= 0)) {
            ok = 0;
            lt_sb_printf(&b, "cannot set %s to %s", argv[1], argv[2]);
        } else {
            double old = *slot;
            *slot = v;
            lt_sb_printf(&b, "%s=%.6g\nold=%.6g\nstep=%ld\n", argv[1], v, old, step);
            char ev[200];
            snprintf(ev, sizeof ev, "hparam %s %.6g -> %.6g step=%ld client=%u", argv[1], old, v, step, r->client_id);
            if (nchanges < 64)
                snprintf(changes[nchanges++], sizeof changes[0],
                         "step=%ld time=%ld name=%s old=%.6g new=%.6g client=%u", step, (long)time(NULL), argv[1], old,
                         v, r->client_id);
            lt_ctl_server_event(srv, ev);
        }
    } else if (!strcmp(c, "inspect") && argc >= 2) {
        int which = -1;
        for (int i = 0; i < 8; i++)
            if (!strcmp(argv[1], layer_names[i])) which = i;
        if (which < 0) {
            ok = 0;
            lt_sb_printf(&b, "unknown layer '%s'", argv[1]);
        } else {
            /* a 24x24 ring: recognisable when drawn */
            lt_sb_printf(&b,
                         "layer=%s\nwhat=output\nsource=batch\nsample=0\nchannel=0\nshape=24x24\nfull_shape=%s\n"
                         "mean=0.2\nstd=0.4\nmin=0\nmax=1\nzeros=0.6\nnonfinite=0\nhist_min=0\nhist_max=1\n"
                         "hist=300,10,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,200\nmap_h=24\nmap_w=24\ntruncated=0\nvalues=",
                         argv[1], layer_shapes[which]);
            for (int y = 0; y < 24; y++)
                for (int x = 0; x < 24; x++) {
                    double d = hypot(y - 11.5, x - 11.5);
                    lt_sb_printf(&b, "%s%.3g", y || x ? "," : "", fabs(d - 8) < 2.5 ? 1.0 : 0.0);
                }
            lt_sb_printf(&b, "\n");
        }
    } else if (!strcmp(c, "feed") && argc >= 2) {
        /* a 28x28 "7" */
        lt_sb_printf(
            &b,
            "source=test:%s\nlabel=7\nlabel_name=7\npred=7\npred_name=7\ntop=7:0.91,1:0.05,9:0.02,2:0.01,4:0.01\n"
            "prob_sum=1\ninput_shape=1x28x28\nlayers=conv2d_1,conv2d_2,dense_1,dense_2\ninput=",
            argc > 2 ? argv[2] : "0");
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                int on = (y >= 5 && y <= 7 && x >= 6 && x <= 21) ||
                         (y > 7 && y <= 23 && abs(x - (21 - (y - 7) * 10 / 16)) <= 1);
                lt_sb_printf(&b, "%s%d", y || x ? "," : "", on);
            }
        lt_sb_printf(&b, "\n");
    } else if (!strcmp(c, "help")) {
        lt_sb_printf(&b, "status=state and progress\npause=pause at the next safe point\n");
    } else if (!strcmp(c, "stop")) {
        state = "done";
        lt_sb_printf(&b, "state=stopping\n");
    } else {
        ok = 0;
        lt_sb_printf(&b, "unknown command '%s' (see help)", c);
    }
    reply(r, ok, &b);
    lt_sb_free(&b);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: wb_fake_server <run dir> [seconds]\n");
        return 2;
    }
    double life = argc > 2 ? atof(argv[2]) : 120;
    char path[512];
    snprintf(path, sizeof path, "%s/control.sock", argv[1]);
    lt_err err;
    srv = lt_ctl_server_start(path, "run=fake mnist_cnn", &err);
    if (!srv) {
        fprintf(stderr, "fake server: %s\n", err.msg);
        return 1;
    }
    t0 = lt_now();
    double next_step = t0, next_status = t0, next_layers = t0;
    while (lt_now() - t0 < life && strcmp(state, "done")) {
        lt_ctl_request r;
        while (lt_ctl_server_next_command(srv, &r, 5) == 1) {
            handle(&r);
            lt_ctl_request_clear(&r);
        }
        double now = lt_now();
        if (!strcmp(state, "running") && now >= next_step) {
            for (; next_step <= now && step < total; next_step += 0.02) {
                step++;
                if (step % 10 == 0) {
                    char ev[96];
                    snprintf(ev, sizeof ev, "point train_loss %ld %.6g", step, loss_at(step));
                    lt_ctl_server_event(srv, ev);
                    snprintf(ev, sizeof ev, "point lr %ld %.6g", step, lr);
                    lt_ctl_server_event(srv, ev);
                }
            }
        } else if (strcmp(state, "running")) {
            next_step = now;
        }
        if (now >= next_status) {
            lt_sb b = {0};
            status_body(&b);
            lt_ctl_server_snapshot(srv, "status", b.p, b.n);
            lt_sb_free(&b);
            next_status = now + 0.25;
        }
        if (now >= next_layers && !strcmp(state, "running")) {
            lt_sb b = {0};
            layers_body(&b);
            lt_ctl_server_snapshot(srv, "layers", b.p, b.n);
            lt_sb_free(&b);
            next_layers = now + 1;
        }
        char line[256];
        while (lt_ctl_server_log(srv, line, sizeof line)) fprintf(stderr, "fake server: %s\n", line);
    }
    lt_ctl_server_stop(srv);
    return 0;
}
