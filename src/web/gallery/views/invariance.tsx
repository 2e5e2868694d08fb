/** ZF Fig. 5 for one image: feature distances and the class probability as it is translated, scaled or rotated (Model.invariance). */
import { useState } from 'react';
import { query } from '../api';
import { Async, fmt, useAsync } from '../components';

type Transform = 'TRANSLATE' | 'SCALE' | 'ROTATE';

interface InvarianceInfo {
  layers: string[];
  targetLabel: string;
  targetSource: string;
  imageUrl: string;
  steps: { amount: number; distances: number[]; probability: number }[];
}

const TRANSFORMS: Record<Transform, string> = { TRANSLATE: 'vertical translation', SCALE: 'scaling', ROTATE: 'rotation' };

export function InvariancePanel({ model, imageId }: { model: string; imageId: string }) {
  const [transform, setTransform] = useState<Transform>('ROTATE');
  const state = useAsync(
    (signal) =>
      query<{ model: { invariance: InvarianceInfo } }>(
        `query Invariance($model: String!, $id: ID!, $transform: InvarianceTransform!) { model(name: $model) { invariance(image: { id: $id }, transform: $transform, steps: 13) {
          layers targetLabel targetSource imageUrl steps { amount distances probability } } } }`,
        { model, id: imageId, transform },
        signal,
      ).then((d) => d.model.invariance),
    [model, imageId, transform],
  );
  return (
    <section className="invariance">
      <h2>
        Invariance (ZF Fig. 5):{' '}
        <select aria-label="transform" value={transform} onChange={(e) => setTransform(e.target.value as Transform)}>
          {Object.entries(TRANSFORMS).map(([t, name]) => (
            <option key={t} value={t}>
              {name}
            </option>
          ))}
        </select>
      </h2>
      <Async state={state} what="the invariance curves">
        {(inv) => (
          <>
            <p className="muted">
              Euclidean distance of {inv.layers.join(' and ')}’s features from the untransformed image’s, and p({inv.targetLabel}) (
              {inv.targetSource === 'LABEL' ? 'the image’s label' : inv.targetSource === 'TOP1' ? 'the original’s top class' : 'as asked'}).
            </p>
            <img className="invariance-plot" src={inv.imageUrl} alt={`invariance to ${TRANSFORMS[transform]}`} />
            <details>
              <summary>Data</summary>
              <table className="invariance-data">
                <thead>
                  <tr>
                    <th>amount</th>
                    {inv.layers.map((l) => (
                      <th key={l}>{l}</th>
                    ))}
                    <th>p({inv.targetLabel})</th>
                  </tr>
                </thead>
                <tbody>
                  {inv.steps.map((s) => (
                    <tr key={s.amount}>
                      <td>{fmt(s.amount, 2)}</td>
                      {s.distances.map((d, i) => (
                        <td key={i}>{fmt(d)}</td>
                      ))}
                      <td>{fmt(s.probability)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </details>
          </>
        )}
      </Async>
    </section>
  );
}
