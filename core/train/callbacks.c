/* EarlyStopping and ModelCheckpoint decisions, following Lightning's rules. */
#include "lathe/callbacks.h"

#include <stdio.h>
#include <string.h>

void lt_early_stopping_init(lt_early_stopping *es, const char *monitor, int mode_max, int patience, double min_delta) {
    memset(es, 0, sizeof *es);
    snprintf(es->monitor, sizeof es->monitor, "%s", monitor);
    es->mode_max = mode_max;
    es->patience = patience;
    es->min_delta = fabs(min_delta);
    es->check_finite = 1;
    es->stopping_threshold = NAN;
    es->divergence_threshold = NAN;
    es->best = mode_max ? -INFINITY : INFINITY;
}

/* a better than b, in the monitor's direction */
static int better(int mode_max, double a, double b) { return mode_max ? a > b : a < b; }

int lt_early_stopping_update(lt_early_stopping *es, double v) {
    if (es->stopped) return 1;
    if (es->check_finite && !isfinite(v)) {
        snprintf(es->reason, sizeof es->reason, "monitored metric %s = %g is not finite; previous best was %g",
                 es->monitor, v, es->best);
        return es->stopped = 1;
    }
    if (!isnan(es->stopping_threshold) && better(es->mode_max, v, es->stopping_threshold)) {
        snprintf(es->reason, sizeof es->reason, "stopping threshold reached: %s = %g %s %g", es->monitor, v,
                 es->mode_max ? ">" : "<", es->stopping_threshold);
        return es->stopped = 1;
    }
    if (!isnan(es->divergence_threshold) && better(es->mode_max, es->divergence_threshold, v)) {
        snprintf(es->reason, sizeof es->reason, "divergence threshold reached: %s = %g %s %g", es->monitor, v,
                 es->mode_max ? "<" : ">", es->divergence_threshold);
        return es->stopped = 1;
    }
    double shifted = es->mode_max ? v - es->min_delta : v + es->min_delta;
    if (better(es->mode_max, shifted, es->best)) {
        es->best = v;
        es->wait = 0;
        return 0;
    }
    if (++es->wait >= es->patience) {
        snprintf(es->reason, sizeof es->reason,
                 "monitored metric %s did not improve in the last %d checks; best score %g", es->monitor, es->wait,
                 es->best);
        return es->stopped = 1;
    }
    return 0;
}

void lt_ckpt_policy_init(lt_ckpt_policy *p) {
    memset(p, 0, sizeof *p);
    p->save_top_k = 1;
    p->every_n_epochs = 1;
    p->best_score = NAN;
}

int lt_ckpt_due_epoch(const lt_ckpt_policy *p, long epoch) {
    return p->every_n_epochs > 0 && p->every_n_train_steps == 0 && (epoch + 1) % p->every_n_epochs == 0;
}

int lt_ckpt_due_step(const lt_ckpt_policy *p, long step) {
    return p->every_n_train_steps > 0 && step > 0 && step % p->every_n_train_steps == 0;
}

int lt_ckpt_offer(lt_ckpt_policy *p, const char *path, double score, char *evict, size_t evict_len) {
    if (evict_len) evict[0] = '\0';
    if (p->save_top_k == 0) return 0;
    int monitored = p->monitor[0] != 0;
    /* without a monitor the newest wins: score by save order */
    double s = monitored ? score : (double)p->saves;
    if (monitored && isnan(s)) return 0;
    int k = p->save_top_k < 0 || p->save_top_k > LT_CKPT_MAX_TOPK ? LT_CKPT_MAX_TOPK : p->save_top_k;
    int slot = -1;
    if (p->nkept < k) {
        slot = p->nkept++;
    } else {
        /* the worst kept one (oldest among equals) */
        int worst = 0;
        for (int i = 1; i < p->nkept; i++) {
            int mm = monitored ? p->mode_max : 1;
            if (better(mm, p->kept_score[worst], p->kept_score[i]) ||
                (p->kept_score[i] == p->kept_score[worst] && p->kept_order[i] < p->kept_order[worst]))
                worst = i;
        }
        int mm = monitored ? p->mode_max : 1;
        if (!better(mm, s, p->kept_score[worst])) return 0;
        if (strcmp(p->kept[worst], path) != 0) snprintf(evict, evict_len, "%s", p->kept[worst]);
        slot = worst;
    }
    snprintf(p->kept[slot], sizeof p->kept[slot], "%s", path);
    p->kept_score[slot] = s;
    p->kept_order[slot] = p->saves++;
    if (!monitored || isnan(p->best_score) || better(p->mode_max, s, p->best_score)) {
        p->best_score = s;
        snprintf(p->best_path, sizeof p->best_path, "%s", path);
    }
    return 1;
}
