-- Per landing day of the window: event rows that the fact leaves out for lack of a
-- datestamp. A day without such rows has no row here.
select
    partition_date as day,
    count(*) as null_datestamp_rows
from {{ ref('src_user_event') }}
where partition_date >= :window_start
    and partition_date < :window_end
    and datestamp is null
group by partition_date
