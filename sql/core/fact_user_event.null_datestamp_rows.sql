-- Landed event rows of the window that the fact leaves out for lack of a datestamp.
select count(*) as null_datestamp_rows
from {{ ref('src_user_event') }}
where partition_date >= :window_start
    and partition_date < :window_end
    and datestamp is null
