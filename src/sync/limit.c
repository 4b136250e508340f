/* The number of applies in flight, adapted to the API server's latency
 * (TCP Vegas). Pure. */
#include "sluice/sync.h"

void sl_sync_limit_init(struct sl_sync_limit *l, unsigned initial, unsigned min, unsigned max)
{
	min = min ? min : 1;
	max = max < min ? min : max;
	*l = (struct sl_sync_limit){
	    .limit = SL_MIN(SL_MAX(initial, min), max),
	    .min = min,
	    .max = max,
	};
}

unsigned sl_sync_limit_sample(struct sl_sync_limit *l, uint64_t rtt_us)
{
	uint64_t avg;
	double queued;
	unsigned alpha, step;

	l->sum_rtt_us += rtt_us;
	if (++l->n < l->limit)
		return l->limit;
	avg = SL_MAX(l->sum_rtt_us / l->n, (uint64_t)1);
	l->sum_rtt_us = 0;
	l->n = 0;
	if (!l->min_rtt_us || avg < l->min_rtt_us)
		l->min_rtt_us = avg;
	/* requests waiting in the server rather than being served: the
	 * share of latency above the lowest, times the requests in flight */
	queued = (double)l->limit * (double)(avg - l->min_rtt_us) / (double)avg;
	alpha = SL_MAX(3u, l->limit / 10);
	step = SL_MAX(1u, l->limit / 4);
	if (queued < alpha)
		l->limit = SL_MIN(l->limit + step, l->max);
	else if (queued > 2.0 * alpha)
		l->limit = l->limit > l->min + step ? l->limit - step : l->min;
	return l->limit;
}
